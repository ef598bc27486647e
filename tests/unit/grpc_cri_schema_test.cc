// The generated runtime.v1 schema: RPC set, streaming shapes, a few field numbers
// that changed recently upstream, and the <signal.h> clash of its Signal enum.
#include <csignal>  // before the schema on purpose: the wrapper must cope

#include <google/protobuf/descriptor.pb.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "cri/proto/runtime_api.h"

namespace {

namespace cri = runtime::v1;
using google::protobuf::FileDescriptor;
using google::protobuf::ServiceDescriptor;

const FileDescriptor& schema() { return *cri::VersionRequest::descriptor()->file(); }

TEST(GrpcCriSchema, PackageAndServices) {
  EXPECT_EQ(schema().package(), "runtime.v1");
  ASSERT_EQ(schema().service_count(), 2);
  const ServiceDescriptor* runtime = schema().FindServiceByName("RuntimeService");
  const ServiceDescriptor* image = schema().FindServiceByName("ImageService");
  ASSERT_NE(runtime, nullptr);
  ASSERT_NE(image, nullptr);
  EXPECT_EQ(runtime->method_count(), 35);
  EXPECT_EQ(image->method_count(), 6);
  EXPECT_EQ(runtime->full_name(), "runtime.v1.RuntimeService");
}

TEST(GrpcCriSchema, ServerStreamingMethods) {
  std::set<std::string> streaming;
  for (int s = 0; s < schema().service_count(); ++s) {
    const ServiceDescriptor* service = schema().service(s);
    for (int m = 0; m < service->method_count(); ++m) {
      EXPECT_FALSE(service->method(m)->client_streaming()) << service->method(m)->name();
      if (service->method(m)->server_streaming()) streaming.insert(service->method(m)->name());
    }
  }
  EXPECT_EQ(streaming, (std::set<std::string>{"GetContainerEvents", "StreamPodSandboxes", "StreamContainers",
                                              "StreamContainerStats", "StreamPodSandboxStats",
                                              "StreamPodSandboxMetrics", "StreamImages"}));
  const auto* events = schema().FindServiceByName("RuntimeService")->FindMethodByName("GetContainerEvents");
  EXPECT_EQ(events->input_type()->name(), "GetEventsRequest");
  EXPECT_EQ(events->output_type()->name(), "ContainerEventResponse");
}

TEST(GrpcCriSchema, FieldNumbersMatchUpstream) {
  EXPECT_EQ(cri::ImageSpec::kUserSpecifiedImageFieldNumber, 18);
  EXPECT_EQ(cri::ImageSpec::kRuntimeHandlerFieldNumber, 19);
  EXPECT_EQ(cri::ImageSpec::kImageRefFieldNumber, 20);
  EXPECT_EQ(cri::LinuxContainerSecurityContext::kSupplementalGroupsPolicyFieldNumber, 17);
  EXPECT_EQ(cri::LinuxSandboxSecurityContext::kRunAsGroupFieldNumber, 8);
  EXPECT_EQ(cri::ContainerStatus::kStopSignalFieldNumber, 19);
  EXPECT_EQ(cri::ContainerConfig::kCDIDevicesFieldNumber, 17);
  EXPECT_EQ(cri::StreamPodSandboxesResponse::kPodSandboxesFieldNumber, 1);
  EXPECT_EQ(cri::StreamPodSandboxMetricsResponse::kPodSandboxMetricsFieldNumber, 1);
  EXPECT_EQ(cri::UpdatePodSandboxResourcesRequest::kResourcesFieldNumber, 3);
  EXPECT_EQ(cri::PsiStats::descriptor()->FindFieldByNumber(1)->name(), "Full");
  EXPECT_TRUE(cri::LinuxContainerSecurityContext::descriptor()->FindFieldByName("seccomp_profile_path")
                  ->options().deprecated());
}

TEST(GrpcCriSchema, SignalEnumCoexistsWithSignalMacros) {
  static_assert(SIGKILL == 9, "the <signal.h> macro is back after the schema header");
  cri::Signal sig = cri::RUNTIME_DEFAULT;
  ASSERT_TRUE(cri::Signal_Parse("SIGKILL", &sig));
  EXPECT_EQ(static_cast<int>(sig), 13);
  EXPECT_EQ(cri::Signal_Name(static_cast<cri::Signal>(23)), "SIGTERM");
  EXPECT_EQ(cri::Signal_Name(cri::RUNTIME_DEFAULT), "RUNTIME_DEFAULT");
}

}  // namespace
