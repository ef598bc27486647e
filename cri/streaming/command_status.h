// How a remote command ended, as the client reads it on the error channel. Protocol
// v4 and later carry a Kubernetes metav1.Status as JSON (kubectl takes the exit code
// from its causes); earlier versions carry only the text of an error, nothing on success.
#pragma once

#include <string>

namespace berth::streaming {

struct CommandOutcome {
  enum class Kind { success, exit_code, internal_error };
  Kind kind = Kind::success;
  int exit_code = 0;
  std::string message;  // internal_error: what failed; exit_code: the command line
};

CommandOutcome success();
CommandOutcome exited_with(int code, const std::string& command_line);
CommandOutcome internal_error(const std::string& message);

std::string status_json(const CommandOutcome& outcome);
// Empty on success.
std::string status_text(const CommandOutcome& outcome);

}  // namespace berth::streaming
