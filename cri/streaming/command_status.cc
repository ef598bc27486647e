#include "cri/streaming/command_status.h"

#include <nlohmann/json.hpp>

namespace berth::streaming {

namespace {

// The message kubelet's own streaming server writes for a non-zero exit.
std::string exit_message(const CommandOutcome& o) {
  return "command terminated with non-zero exit code: error executing command " + o.message + ", exit code " +
         std::to_string(o.exit_code);
}

std::string internal_message(const CommandOutcome& o) { return "Internal error occurred: " + o.message; }

}  // namespace

CommandOutcome success() { return {}; }

CommandOutcome exited_with(int code, const std::string& command_line) {
  return CommandOutcome{CommandOutcome::Kind::exit_code, code, command_line};
}

CommandOutcome internal_error(const std::string& message) {
  return CommandOutcome{CommandOutcome::Kind::internal_error, 0, message};
}

std::string status_json(const CommandOutcome& o) {
  // Key order and omitted empty fields as Go's encoding of metav1.Status.
  nlohmann::ordered_json s;
  s["metadata"] = nlohmann::ordered_json::object();
  switch (o.kind) {
    case CommandOutcome::Kind::success:
      s["status"] = "Success";
      break;
    case CommandOutcome::Kind::exit_code:
      s["status"] = "Failure";
      s["message"] = exit_message(o);
      s["reason"] = "NonZeroExitCode";
      s["details"]["causes"] = {{{"reason", "ExitCode"}, {"message", std::to_string(o.exit_code)}}};
      break;
    case CommandOutcome::Kind::internal_error:
      s["status"] = "Failure";
      s["message"] = internal_message(o);
      s["reason"] = "InternalError";
      s["details"]["causes"] = {{{"message", o.message}}};
      s["code"] = 500;
      break;
  }
  return s.dump();
}

std::string status_text(const CommandOutcome& o) {
  switch (o.kind) {
    case CommandOutcome::Kind::success:
      return {};
    case CommandOutcome::Kind::exit_code:
      return exit_message(o);
    case CommandOutcome::Kind::internal_error:
      return internal_message(o);
  }
  return {};
}

}  // namespace berth::streaming
