// CRI front end, no daemon: config <-> spec translation and its rules, status and
// stats messages, filters, the error mapping, credentials, metrics and the event
// queue.
#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <thread>

#include "cri/service/cpu_usage_rate.h"
#include "cri/service/cri_errors.h"
#include "cri/service/cri_filters.h"
#include "cri/service/cri_metrics.h"
#include "cri/service/cri_report.h"
#include "cri/service/cri_translate.h"
#include "cri/service/event_queue.h"
#include "cri/service/image_service.h"
#include "cri/service/pull_credentials.h"
#include "cri/service/signal_names.h"
#include "storage/image_store.h"

namespace berth::cri {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Type = pod::SecurityProfile::Type;
using grpc::StatusCode;

// The deprecated string fields are what older kubelets still send.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
void set_legacy_seccomp(v1::LinuxContainerSecurityContext& sc, const std::string& s) { sc.set_seccomp_profile_path(s); }
void set_legacy_apparmor(v1::LinuxContainerSecurityContext& sc, const std::string& s) { sc.set_apparmor_profile(s); }
void set_legacy_seccomp(v1::LinuxSandboxSecurityContext& sc, const std::string& s) { sc.set_seccomp_profile_path(s); }
#pragma GCC diagnostic pop

int signal_enum(const std::string& name) {
  v1::Signal value = v1::RUNTIME_DEFAULT;
  EXPECT_TRUE(v1::Signal_Parse(name, &value)) << name;
  return value;
}

bool same(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  std::string diff;
  google::protobuf::util::MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  bool equal = d.Compare(a, b);
  EXPECT_TRUE(equal) << diff;
  return equal;
}

v1::PodSandboxConfig minimal_pod() {
  v1::PodSandboxConfig c;
  c.mutable_metadata()->set_name("web");
  c.mutable_metadata()->set_namespace_("default");
  c.mutable_metadata()->set_uid("uid-1");
  return c;
}

v1::ContainerConfig minimal_container() {
  v1::ContainerConfig c;
  c.mutable_metadata()->set_name("app");
  c.mutable_image()->set_image("sha256:abc");
  c.mutable_linux()->mutable_security_context();
  return c;
}

// ---- error mapping -----------------------------------------------------------------

TEST(CriErrors, MapsEveryErrnoClass) {
  EXPECT_EQ(status_code_for(EINVAL), StatusCode::invalid_argument);
  EXPECT_EQ(status_code_for(ENOENT), StatusCode::not_found);
  EXPECT_EQ(status_code_for(ESRCH), StatusCode::not_found);
  EXPECT_EQ(status_code_for(EEXIST), StatusCode::already_exists);
  EXPECT_EQ(status_code_for(ETIMEDOUT), StatusCode::deadline_exceeded);
  EXPECT_EQ(status_code_for(EBUSY), StatusCode::failed_precondition);
  EXPECT_EQ(status_code_for(EAGAIN), StatusCode::unavailable);
  EXPECT_EQ(status_code_for(EACCES), StatusCode::permission_denied);
  EXPECT_EQ(status_code_for(ENOSYS), StatusCode::unimplemented);
  EXPECT_EQ(status_code_for(EOPNOTSUPP), StatusCode::unimplemented);
  EXPECT_EQ(status_code_for(ENOSPC), StatusCode::resource_exhausted);
  EXPECT_EQ(status_code_for(ECANCELED), StatusCode::cancelled);
  EXPECT_EQ(status_code_for(EPERM), StatusCode::unknown);
  EXPECT_EQ(status_code_for(EIO), StatusCode::unknown);
  EXPECT_EQ(status_code_for(0), StatusCode::ok);
}

TEST(CriErrors, CarriesTheMessage) {
  auto s = to_call_status(Error{ENOENT, "container abc not found"});
  EXPECT_EQ(s.code, StatusCode::not_found);
  EXPECT_EQ(s.message, "container abc not found");
}

// ---- security profiles -------------------------------------------------------------

TEST(CriSecurityProfiles, LegacySeccompStrings) {
  EXPECT_EQ(parse_legacy_profile("", ProfileKind::seccomp)->type, Type::unset);
  EXPECT_EQ(parse_legacy_profile("runtime/default", ProfileKind::seccomp)->type, Type::runtime_default);
  EXPECT_EQ(parse_legacy_profile("docker/default", ProfileKind::seccomp)->type, Type::runtime_default);
  EXPECT_EQ(parse_legacy_profile("unconfined", ProfileKind::seccomp)->type, Type::unconfined);
  // kubelet wrote "localhost/" + the profile's absolute path.
  auto local = parse_legacy_profile("localhost//var/lib/kubelet/seccomp/audit.json", ProfileKind::seccomp);
  ASSERT_TRUE(local);
  EXPECT_EQ(local->type, Type::localhost);
  EXPECT_EQ(local->localhost_ref, "/var/lib/kubelet/seccomp/audit.json");

  for (const char* bad : {"localhost/relative.json", "localhost/var/lib/p.json", "localhost/", "default", "RUNTIME/DEFAULT", "/abs/path.json",
                          "docker/unconfined"}) {
    auto r = parse_legacy_profile(bad, ProfileKind::seccomp);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, EINVAL) << bad;
  }
}

TEST(CriSecurityProfiles, LegacyAppArmorStrings) {
  EXPECT_EQ(parse_legacy_profile("runtime/default", ProfileKind::apparmor)->type, Type::runtime_default);
  EXPECT_EQ(parse_legacy_profile("unconfined", ProfileKind::apparmor)->type, Type::unconfined);
  auto named = parse_legacy_profile("localhost/k8s-apparmor-example", ProfileKind::apparmor);
  ASSERT_TRUE(named);
  EXPECT_EQ(named->type, Type::localhost);
  EXPECT_EQ(named->localhost_ref, "k8s-apparmor-example");
  EXPECT_FALSE(parse_legacy_profile("localhost/", ProfileKind::apparmor));
  auto bad = parse_legacy_profile("k8s-apparmor-example", ProfileKind::apparmor);
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("apparmor"));
}

TEST(CriSecurityProfiles, StructuredProfileWinsOverLegacy) {
  v1::SecurityProfile p;
  p.set_profile_type(v1::SecurityProfile::Unconfined);
  // The legacy string would be an error on its own; the structured form is used.
  auto r = to_security_profile(&p, "bogus", ProfileKind::seccomp);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, Type::unconfined);

  v1::SecurityProfile empty;  // RuntimeDefault is the zero value
  EXPECT_EQ(to_security_profile(&empty, "", ProfileKind::seccomp)->type, Type::runtime_default);
  EXPECT_EQ(to_security_profile(nullptr, "", ProfileKind::seccomp)->type, Type::unset);
  EXPECT_EQ(to_security_profile(nullptr, "unconfined", ProfileKind::seccomp)->type, Type::unconfined);
}

TEST(CriSecurityProfiles, StructuredLocalhostRules) {
  v1::SecurityProfile p;
  p.set_profile_type(v1::SecurityProfile::Localhost);
  p.set_localhost_ref("/profiles/a.json");
  auto r = to_security_profile(&p, "", ProfileKind::seccomp);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->localhost_ref, "/profiles/a.json");

  // A "localhost/" prefix in the structured ref is forgiven, as containerd does.
  p.set_localhost_ref("localhost//profiles/a.json");
  EXPECT_EQ(to_security_profile(&p, "", ProfileKind::seccomp)->localhost_ref, "/profiles/a.json");

  p.set_localhost_ref("relative.json");
  EXPECT_FALSE(to_security_profile(&p, "", ProfileKind::seccomp));
  EXPECT_TRUE(to_security_profile(&p, "", ProfileKind::apparmor));  // AppArmor refs are names
  p.clear_localhost_ref();
  EXPECT_FALSE(to_security_profile(&p, "", ProfileKind::seccomp));

  v1::SecurityProfile wrong;
  wrong.set_profile_type(v1::SecurityProfile::RuntimeDefault);
  wrong.set_localhost_ref("/x.json");
  auto err = to_security_profile(&wrong, "", ProfileKind::seccomp);
  ASSERT_FALSE(err);
  EXPECT_THAT(err.error().message, HasSubstr("only allowed with profile type Localhost"));

  v1::SecurityProfile unknown;
  unknown.set_profile_type(static_cast<v1::SecurityProfile::ProfileType>(7));
  EXPECT_FALSE(to_security_profile(&unknown, "", ProfileKind::seccomp));
}

TEST(CriSecurityProfiles, BackToCri) {
  v1::SecurityProfile out;
  EXPECT_FALSE(to_cri_security_profile(pod::SecurityProfile{}, out));
  ASSERT_TRUE(to_cri_security_profile(pod::SecurityProfile{Type::localhost, "/p.json"}, out));
  EXPECT_EQ(out.profile_type(), v1::SecurityProfile::Localhost);
  EXPECT_EQ(out.localhost_ref(), "/p.json");
}

TEST(CriSecurityProfiles, ContainerConfigUsesLegacyFieldsWhenStructuredAbsent) {
  auto c = minimal_container();
  auto* sc = c.mutable_linux()->mutable_security_context();
  set_legacy_seccomp(*sc, "localhost//opt/seccomp.json");
  set_legacy_apparmor(*sc, "unconfined");
  auto spec = to_container_spec(c);
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->security.seccomp.type, Type::localhost);
  EXPECT_EQ(spec->security.seccomp.localhost_ref, "/opt/seccomp.json");
  EXPECT_EQ(spec->security.apparmor.type, Type::unconfined);

  set_legacy_seccomp(*sc, "profile.json");
  auto bad = to_container_spec(c);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, EINVAL);
  EXPECT_THAT(bad.error().message, HasSubstr("linux.security_context"));
}

TEST(CriSecurityProfiles, PodConfigSeccomp) {
  auto c = minimal_pod();
  set_legacy_seccomp(*c.mutable_linux()->mutable_security_context(), "docker/default");
  EXPECT_EQ(to_pod_spec(c, "")->seccomp.type, Type::runtime_default);
  set_legacy_seccomp(*c.mutable_linux()->mutable_security_context(), "nonsense");
  EXPECT_FALSE(to_pod_spec(c, ""));
  // A malformed pod-level AppArmor profile is refused although berth does not apply one.
  auto d = minimal_pod();
  auto* aa = d.mutable_linux()->mutable_security_context()->mutable_apparmor();
  aa->set_profile_type(v1::SecurityProfile::Localhost);
  EXPECT_FALSE(to_pod_spec(d, ""));
}

// ---- namespaces ------------------------------------------------------------------

TEST(CriNamespaces, ModeMappingBothWays) {
  for (auto [cri, berth] : {std::pair{v1::POD, pod::NamespaceMode::pod},
                            std::pair{v1::CONTAINER, pod::NamespaceMode::container},
                            std::pair{v1::NODE, pod::NamespaceMode::node},
                            std::pair{v1::TARGET, pod::NamespaceMode::target}}) {
    EXPECT_EQ(to_namespace_mode(cri), berth);
    EXPECT_EQ(to_cri_namespace_mode(berth), cri);
  }
}

TEST(CriNamespaces, PodLevel) {
  auto c = minimal_pod();
  auto* ns = c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_network(v1::NODE);
  ns->set_pid(v1::CONTAINER);
  ns->set_ipc(v1::NODE);
  auto spec = to_pod_spec(c, "");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->namespaces.network, pod::NamespaceMode::node);
  EXPECT_EQ(spec->namespaces.pid, pod::NamespaceMode::container);
  EXPECT_EQ(spec->namespaces.ipc, pod::NamespaceMode::node);

  ns->set_pid(v1::TARGET);
  ns->set_target_id("abc");
  EXPECT_FALSE(to_pod_spec(c, ""));
}

TEST(CriNamespaces, PresentOptionsUseCriZeroValues) {
  // A NamespaceOption that is there but empty says POD for all three, as CRI has it.
  auto c = minimal_pod();
  c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  auto spec = to_pod_spec(c, "");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->namespaces.network, pod::NamespaceMode::pod);
  EXPECT_EQ(spec->namespaces.pid, pod::NamespaceMode::pod);
  EXPECT_EQ(spec->namespaces.ipc, pod::NamespaceMode::pod);
  auto ctr = minimal_container();
  ctr.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  EXPECT_EQ(to_container_spec(ctr)->security.namespaces.pid, pod::NamespaceMode::pod);
}

TEST(CriNamespaces, AbsentOptionsKeepKubernetesDefaults) {
  // No NamespaceOption at all: a pid namespace per container, network and IPC of the pod.
  auto spec = to_pod_spec(minimal_pod(), "");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->namespaces.pid, pod::NamespaceMode::container);
  EXPECT_EQ(spec->namespaces.network, pod::NamespaceMode::pod);
  auto ctr = to_container_spec(minimal_container());
  ASSERT_TRUE(ctr);
  EXPECT_EQ(ctr->security.namespaces.pid, pod::NamespaceMode::container);
  EXPECT_EQ(ctr->security.namespaces.ipc, pod::NamespaceMode::pod);
  auto bare = minimal_container();
  bare.clear_linux();
  EXPECT_EQ(to_container_spec(bare)->security.namespaces.pid, pod::NamespaceMode::container);
}

TEST(CriNamespaces, ContainerTargetNeedsAnId) {
  auto c = minimal_container();
  auto* ns = c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_pid(v1::TARGET);
  auto missing = to_container_spec(c);
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message, HasSubstr("target_id"));
  ns->set_target_id("c0ffee");
  auto spec = to_container_spec(c);
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->security.namespaces.pid, pod::NamespaceMode::target);
  EXPECT_EQ(spec->security.namespaces.target_id, "c0ffee");

  ns->set_network(v1::TARGET);
  EXPECT_FALSE(to_container_spec(c));
}

TEST(CriNamespaces, TargetIdIgnoredUnlessTargeting) {
  auto c = minimal_container();
  auto* ns = c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_pid(v1::CONTAINER);
  ns->set_target_id("stale");
  EXPECT_EQ(to_container_spec(c)->security.namespaces.target_id, "");
}

TEST(CriNamespaces, UserNamespaces) {
  auto c = minimal_pod();
  auto* userns = c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->mutable_userns_options();
  userns->set_mode(v1::NODE);
  EXPECT_TRUE(to_pod_spec(c, ""));
  userns->set_mode(v1::POD);
  auto r = to_pod_spec(c, "");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EOPNOTSUPP);
  userns->set_mode(v1::TARGET);
  EXPECT_EQ(to_pod_spec(c, "").error().code, EINVAL);
}

TEST(CriNamespaces, UnknownModeIsInvalid) {
  auto c = minimal_container();
  c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_ipc(
      static_cast<v1::NamespaceMode>(9));
  EXPECT_EQ(to_container_spec(c).error().code, EINVAL);
}

// ---- mounts and devices ----------------------------------------------------------

TEST(CriMounts, PropagationBothWays) {
  for (auto [cri, berth] : {std::pair{v1::PROPAGATION_PRIVATE, pod::MountPropagation::private_},
                            std::pair{v1::PROPAGATION_HOST_TO_CONTAINER, pod::MountPropagation::host_to_container},
                            std::pair{v1::PROPAGATION_BIDIRECTIONAL, pod::MountPropagation::bidirectional}}) {
    v1::Mount m;
    m.set_container_path("/data");
    m.set_host_path("/srv/data");
    m.set_propagation(cri);
    auto mount = to_mount(m);
    ASSERT_TRUE(mount);
    EXPECT_EQ(mount->propagation, berth);
    v1::Mount back;
    to_cri_mount(*mount, back);
    same(back, m);
  }
}

TEST(CriMounts, Rules) {
  v1::Mount m;
  m.set_container_path("/data");
  m.set_host_path("/srv/data");
  m.set_readonly(true);
  m.set_recursive_read_only(true);
  m.set_selinux_relabel(true);
  auto ok = to_mount(m);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(ok->recursive_readonly);
  EXPECT_TRUE(ok->selinux_relabel);

  auto rro_rw = m;
  rro_rw.set_readonly(false);
  EXPECT_THAT(to_mount(rro_rw).error().message, HasSubstr("needs readonly"));
  auto rro_shared = m;
  rro_shared.set_propagation(v1::PROPAGATION_BIDIRECTIONAL);
  EXPECT_THAT(to_mount(rro_shared).error().message, HasSubstr("PROPAGATION_PRIVATE"));

  auto no_host = m;
  no_host.clear_host_path();
  EXPECT_EQ(to_mount(no_host).error().code, EINVAL);
  auto no_dest = m;
  no_dest.clear_container_path();
  EXPECT_EQ(to_mount(no_dest).error().code, EINVAL);

  auto image = m;
  image.clear_host_path();
  image.mutable_image()->set_image("sha256:abc");
  EXPECT_EQ(to_mount(image).error().code, EOPNOTSUPP);
  auto idmap = m;
  idmap.add_uidmappings()->set_length(1);
  EXPECT_EQ(to_mount(idmap).error().code, EOPNOTSUPP);
  auto bad_prop = m;
  bad_prop.set_recursive_read_only(false);
  bad_prop.set_propagation(static_cast<v1::MountPropagation>(5));
  EXPECT_EQ(to_mount(bad_prop).error().code, EINVAL);
}

TEST(CriDevices, PermissionsDefaultAndRules) {
  auto c = minimal_container();
  auto* d = c.add_devices();
  d->set_container_path("/dev/fuse");
  d->set_host_path("/dev/fuse");
  EXPECT_EQ(to_container_spec(c)->devices.at(0).permissions, "rwm");
  d->set_permissions("rw");
  EXPECT_EQ(to_container_spec(c)->devices.at(0).permissions, "rw");
  for (const char* bad : {"rx", "rr", "RW"}) {
    d->set_permissions(bad);
    EXPECT_EQ(to_container_spec(c).error().code, EINVAL) << bad;
  }
  d->set_permissions("r");
  d->clear_host_path();
  EXPECT_EQ(to_container_spec(c).error().code, EINVAL);
}

// ---- masked and read-only paths -----------------------------------------------------

TEST(CriMaskedPaths, EmptyListsFromASecurityContextMeanUnmasked) {
  // kubelet's procMount: Unmasked: both lists empty (on the wire: absent).
  auto spec = to_container_spec(minimal_container());
  ASSERT_TRUE(spec);
  EXPECT_TRUE(spec->security.masked_paths_set);
  EXPECT_TRUE(spec->security.readonly_paths_set);
  EXPECT_TRUE(spec->security.masked_paths.empty());
  EXPECT_TRUE(spec->security.readonly_paths.empty());
}

TEST(CriMaskedPaths, GivenListsAreKept) {
  auto c = minimal_container();
  auto* sc = c.mutable_linux()->mutable_security_context();
  sc->add_masked_paths("/proc/kcore");
  sc->add_masked_paths("/sys/firmware");
  sc->add_readonly_paths("/proc/sys");
  auto spec = to_container_spec(c);
  ASSERT_TRUE(spec);
  EXPECT_TRUE(spec->security.masked_paths_set);
  EXPECT_THAT(spec->security.masked_paths, ElementsAre("/proc/kcore", "/sys/firmware"));
  EXPECT_THAT(spec->security.readonly_paths, ElementsAre("/proc/sys"));
}

TEST(CriMaskedPaths, NoSecurityContextKeepsBerthDefaults) {
  auto c = minimal_container();
  c.clear_linux();
  auto spec = to_container_spec(c);
  ASSERT_TRUE(spec);
  EXPECT_FALSE(spec->security.masked_paths_set);
  EXPECT_FALSE(spec->security.readonly_paths_set);
}

// ---- stop signals ----------------------------------------------------------------

TEST(CriStopSignal, EnumToName) {
  EXPECT_EQ(*stop_signal_name(v1::RUNTIME_DEFAULT), "");
  EXPECT_EQ(*stop_signal_name(signal_enum("SIGTERM")), "SIGTERM");
  EXPECT_EQ(*stop_signal_name(signal_enum("SIGKILL")), "SIGKILL");
  EXPECT_EQ(*stop_signal_name(signal_enum("SIGQUIT")), "SIGQUIT");
  EXPECT_EQ(*stop_signal_name(signal_enum("SIGRTMIN")), "SIGRTMIN");
  EXPECT_EQ(*stop_signal_name(signal_enum("SIGRTMINPLUS3")), "SIGRTMIN+3");
  EXPECT_EQ(*stop_signal_name(signal_enum("SIGRTMAXMINUS2")), "SIGRTMAX-2");
  EXPECT_EQ(*stop_signal_name(signal_enum("SIGRTMAX")), "SIGRTMAX");
  EXPECT_EQ(*stop_signal_name(signal_enum("SIGCLD")), "SIGCHLD");
  EXPECT_EQ(*stop_signal_name(signal_enum("SIGPOLL")), "SIGIO");
  EXPECT_EQ(*stop_signal_name(signal_enum("SIGIOT")), "SIGABRT");
  auto bad = stop_signal_name(66);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, EINVAL);
}

TEST(CriStopSignal, EveryEnumValueHasAName) {
  const auto* desc = v1::Signal_descriptor();
  for (int i = 1; i < desc->value_count(); ++i) {
    int value = desc->value(i)->number();
    auto name = stop_signal_name(value);
    ASSERT_TRUE(name) << value;
    EXPECT_FALSE(canonical_signal_name(*name).empty()) << *name;
  }
}

TEST(CriStopSignal, NameToEnum) {
  EXPECT_EQ(stop_signal_value(""), v1::RUNTIME_DEFAULT);
  EXPECT_EQ(stop_signal_value("SIGTERM"), signal_enum("SIGTERM"));
  EXPECT_EQ(stop_signal_value("term"), signal_enum("SIGTERM"));
  EXPECT_EQ(stop_signal_value("15"), signal_enum("SIGTERM"));
  EXPECT_EQ(stop_signal_value("SIGRTMIN+3"), signal_enum("SIGRTMINPLUS3"));
  EXPECT_EQ(stop_signal_value("SIGRTMAX-1"), signal_enum("SIGRTMAXMINUS1"));
  EXPECT_EQ(stop_signal_value("SIGWINCH"), signal_enum("SIGWINCH"));
  EXPECT_EQ(stop_signal_value("SIGBOGUS"), v1::RUNTIME_DEFAULT);
  EXPECT_EQ(stop_signal_value("999"), v1::RUNTIME_DEFAULT);
}

TEST(CriStopSignal, CanonicalNames) {
  EXPECT_EQ(canonical_signal_name("9"), "SIGKILL");
  EXPECT_EQ(canonical_signal_name("sigusr1"), "SIGUSR1");
  EXPECT_EQ(canonical_signal_name("CLD"), "SIGCHLD");
  EXPECT_EQ(canonical_signal_name("SIGIO"), "SIGIO");
  EXPECT_EQ(canonical_signal_name("poll"), "SIGIO");
  EXPECT_EQ(canonical_signal_name("29"), "SIGIO");
  EXPECT_EQ(canonical_signal_name("SIGRTMIN+0"), "SIGRTMIN");
  EXPECT_EQ(canonical_signal_name("SIG"), "");
  EXPECT_EQ(canonical_signal_name("0"), "");
}

TEST(CriStopSignal, ContainerConfig) {
  auto c = minimal_container();
  c.set_stop_signal(static_cast<v1::Signal>(signal_enum("SIGUSR1")));
  EXPECT_EQ(to_container_spec(c)->stop_signal, "SIGUSR1");
  c.set_stop_signal(static_cast<v1::Signal>(77));
  EXPECT_EQ(to_container_spec(c).error().code, EINVAL);
}

// ---- pod configs -----------------------------------------------------------------

TEST(CriPodConfig, MetadataIsRequired) {
  v1::PodSandboxConfig none;
  EXPECT_THAT(to_pod_spec(none, "").error().message, HasSubstr("metadata is required"));
  for (auto clear : {+[](v1::PodSandboxMetadata& m) { m.clear_name(); },
                     +[](v1::PodSandboxMetadata& m) { m.clear_namespace_(); },
                     +[](v1::PodSandboxMetadata& m) { m.clear_uid(); }}) {
    auto c = minimal_pod();
    clear(*c.mutable_metadata());
    auto r = to_pod_spec(c, "");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EINVAL);
  }
}

TEST(CriPodConfig, RunAsGroupNeedsAUser) {
  auto c = minimal_pod();
  c.mutable_linux()->mutable_security_context()->mutable_run_as_group()->set_value(1000);
  EXPECT_THAT(to_pod_spec(c, "").error().message, HasSubstr("run_as_group"));
  c.mutable_linux()->mutable_security_context()->mutable_run_as_user()->set_value(1000);
  EXPECT_TRUE(to_pod_spec(c, ""));
}

TEST(CriPodConfig, PortMappings) {
  auto c = minimal_pod();
  for (auto protocol : {v1::TCP, v1::UDP, v1::SCTP}) {
    auto* pm = c.add_port_mappings();
    pm->set_protocol(protocol);
    pm->set_container_port(80);
    pm->set_host_port(8080);
    pm->set_host_ip("127.0.0.1");
  }
  auto spec = to_pod_spec(c, "");
  ASSERT_TRUE(spec);
  ASSERT_EQ(spec->port_mappings.size(), 3u);
  EXPECT_EQ(spec->port_mappings[0].protocol, "tcp");
  EXPECT_EQ(spec->port_mappings[1].protocol, "udp");
  EXPECT_EQ(spec->port_mappings[2].protocol, "sctp");
  EXPECT_EQ(spec->port_mappings[2].host_ip, "127.0.0.1");

  c.mutable_port_mappings(0)->set_host_port(70000);
  EXPECT_EQ(to_pod_spec(c, "").error().code, EINVAL);
  c.mutable_port_mappings(0)->set_host_port(0);
  c.mutable_port_mappings(0)->set_protocol(static_cast<v1::Protocol>(4));
  EXPECT_EQ(to_pod_spec(c, "").error().code, EINVAL);
}

v1::PodSandboxConfig full_pod() {
  auto c = minimal_pod();
  c.mutable_metadata()->set_attempt(2);
  c.set_hostname("web-0");
  c.set_log_directory("/var/log/pods/default_web_uid-1");
  auto* dns = c.mutable_dns_config();
  dns->add_servers("10.96.0.10");
  dns->add_searches("default.svc.cluster.local");
  dns->add_options("ndots:5");
  auto* pm = c.add_port_mappings();
  pm->set_protocol(v1::UDP);
  pm->set_container_port(53);
  pm->set_host_port(5353);
  pm->set_host_ip("0.0.0.0");
  (*c.mutable_labels())["app"] = "web";
  (*c.mutable_annotations())["kubernetes.io/config.seen"] = "2024-01-01T00:00:00Z";
  auto* linux = c.mutable_linux();
  linux->set_cgroup_parent("/kubepods/burstable/poduid-1");
  (*linux->mutable_sysctls())["net.ipv4.ip_unprivileged_port_start"] = "0";
  auto* sc = linux->mutable_security_context();
  auto* ns = sc->mutable_namespace_options();
  ns->set_network(v1::POD);
  ns->set_pid(v1::CONTAINER);
  ns->set_ipc(v1::POD);
  sc->set_privileged(true);
  sc->mutable_run_as_user()->set_value(1000);
  sc->mutable_run_as_group()->set_value(3000);
  sc->add_supplemental_groups(2000);
  sc->set_readonly_rootfs(true);
  sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  linux->mutable_overhead()->set_cpu_shares(10);
  auto* res = linux->mutable_resources();
  res->set_cpu_period(100000);
  res->set_cpu_quota(50000);
  res->set_memory_limit_in_bytes(256 << 20);
  return c;
}

TEST(CriPodConfig, RoundTrip) {
  auto config = full_pod();
  auto spec = to_pod_spec(config, "runc");
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->runtime_handler, "runc");
  EXPECT_EQ(spec->attempt, 2u);
  EXPECT_EQ(spec->cgroup_parent, "/kubepods/burstable/poduid-1");
  EXPECT_EQ(spec->sysctls.at("net.ipv4.ip_unprivileged_port_start"), "0");
  EXPECT_EQ(*spec->run_as_user, 1000);
  EXPECT_EQ(*spec->run_as_group, 3000);
  ASSERT_TRUE(spec->overhead);
  EXPECT_EQ(spec->overhead->cpu_shares, 10);
  ASSERT_TRUE(spec->resources);
  EXPECT_EQ(spec->resources->cpu_quota, 50000);
  v1::PodSandboxConfig back;
  to_cri_config(*spec, back);
  same(back, config);
}

TEST(CriPodConfig, UnsetResourcesStayUnset) {
  auto spec = to_pod_spec(minimal_pod(), "");
  ASSERT_TRUE(spec);
  EXPECT_FALSE(spec->overhead);
  EXPECT_FALSE(spec->resources);
  EXPECT_FALSE(spec->run_as_user);
  EXPECT_EQ(spec->seccomp.type, Type::unset);
}

// ---- container configs -----------------------------------------------------------

TEST(CriContainerConfig, Required) {
  v1::ContainerConfig none;
  EXPECT_THAT(to_container_spec(none).error().message, HasSubstr("metadata is required"));
  auto no_name = minimal_container();
  no_name.mutable_metadata()->clear_name();
  EXPECT_THAT(to_container_spec(no_name).error().message, HasSubstr("metadata.name"));
  auto no_image = minimal_container();
  no_image.clear_image();
  EXPECT_THAT(to_container_spec(no_image).error().message, HasSubstr("image.image"));
  auto empty_env = minimal_container();
  empty_env.add_envs()->set_value("x");
  EXPECT_EQ(to_container_spec(empty_env).error().code, EINVAL);
  auto cdi = minimal_container();
  cdi.add_cdi_devices()->set_name("vendor.com/gpu=0");
  EXPECT_EQ(to_container_spec(cdi).error().code, EOPNOTSUPP);
}

TEST(CriContainerConfig, UserRules) {
  auto c = minimal_container();
  auto* sc = c.mutable_linux()->mutable_security_context();
  sc->mutable_run_as_group()->set_value(10);
  EXPECT_THAT(to_container_spec(c).error().message, HasSubstr("run_as_group"));
  sc->set_run_as_username("app");
  auto by_name = to_container_spec(c);
  ASSERT_TRUE(by_name);
  EXPECT_EQ(by_name->security.run_as_username, "app");
  EXPECT_EQ(*by_name->security.run_as_group, 10);
  sc->mutable_run_as_user()->set_value(1000);
  EXPECT_THAT(to_container_spec(c).error().message, HasSubstr("mutually exclusive"));
  sc->clear_run_as_username();
  sc->mutable_run_as_user()->set_value(-1);
  EXPECT_EQ(to_container_spec(c).error().code, EINVAL);
}

TEST(CriContainerConfig, SupplementalGroupsPolicy) {
  auto c = minimal_container();
  auto* sc = c.mutable_linux()->mutable_security_context();
  sc->add_supplemental_groups(5);
  EXPECT_FALSE(to_container_spec(c)->security.supplemental_groups_strict);
  sc->set_supplemental_groups_policy(v1::Strict);
  auto spec = to_container_spec(c);
  EXPECT_TRUE(spec->security.supplemental_groups_strict);
  EXPECT_THAT(spec->security.supplemental_groups, ElementsAre(5));
}

TEST(CriContainerConfig, NoNewPrivsIsCopied) {
  auto c = minimal_container();
  EXPECT_FALSE(to_container_spec(c)->security.no_new_privs);
  c.mutable_linux()->mutable_security_context()->set_no_new_privs(true);
  EXPECT_TRUE(to_container_spec(c)->security.no_new_privs);
}

v1::ContainerConfig full_container() {
  auto c = minimal_container();
  c.mutable_metadata()->set_attempt(3);
  c.add_command("/bin/sh");
  c.add_args("-c");
  c.add_args("sleep 1000");
  c.set_working_dir("/srv");
  auto* env = c.add_envs();
  env->set_key("PATH");
  env->set_value("/bin");
  auto* m = c.add_mounts();
  m->set_container_path("/etc/config");
  m->set_host_path("/var/lib/kubelet/pods/uid/volumes/config");
  m->set_readonly(true);
  m->set_propagation(v1::PROPAGATION_HOST_TO_CONTAINER);
  auto* d = c.add_devices();
  d->set_container_path("/dev/fuse");
  d->set_host_path("/dev/fuse");
  d->set_permissions("rwm");
  (*c.mutable_labels())["io.kubernetes.container.name"] = "app";
  (*c.mutable_annotations())["io.kubernetes.container.hash"] = "1234";
  c.set_log_path("app/3.log");
  c.set_stdin(true);
  c.set_stdin_once(true);
  c.set_tty(true);
  auto* res = c.mutable_linux()->mutable_resources();
  res->set_cpu_shares(512);
  res->set_oom_score_adj(-997);
  res->set_cpuset_cpus("0-1");
  res->set_cpuset_mems("0");
  res->set_memory_swap_limit_in_bytes(1 << 30);
  auto* hp = res->add_hugepage_limits();
  hp->set_page_size("2MB");
  hp->set_limit(4 << 20);
  (*res->mutable_unified())["memory.high"] = "1000000";
  auto* sc = c.mutable_linux()->mutable_security_context();
  sc->mutable_capabilities()->add_add_capabilities("NET_ADMIN");
  sc->mutable_capabilities()->add_drop_capabilities("ALL");
  sc->mutable_capabilities()->add_add_ambient_capabilities("NET_BIND_SERVICE");
  sc->set_privileged(false);
  auto* ns = sc->mutable_namespace_options();
  ns->set_network(v1::POD);
  ns->set_pid(v1::TARGET);
  ns->set_ipc(v1::POD);
  ns->set_target_id("c0ffee");
  sc->mutable_run_as_user()->set_value(1000);
  sc->mutable_run_as_group()->set_value(1000);
  sc->set_readonly_rootfs(true);
  sc->add_supplemental_groups(4);
  sc->set_supplemental_groups_policy(v1::Strict);
  sc->set_no_new_privs(true);
  sc->add_masked_paths("/proc/kcore");
  sc->add_readonly_paths("/proc/sys");
  sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::Localhost);
  sc->mutable_seccomp()->set_localhost_ref("/var/lib/kubelet/seccomp/p.json");
  sc->mutable_apparmor()->set_profile_type(v1::SecurityProfile::Unconfined);
  c.set_stop_signal(static_cast<v1::Signal>(signal_enum("SIGRTMINPLUS1")));
  return c;
}

TEST(CriContainerConfig, RoundTrip) {
  auto config = full_container();
  auto spec = to_container_spec(config);
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->stop_signal, "SIGRTMIN+1");
  EXPECT_EQ(spec->log_path, "app/3.log");
  EXPECT_TRUE(spec->stdin_open);
  EXPECT_EQ(spec->resources->oom_score_adj, -997);
  EXPECT_EQ(spec->resources->hugepage_limits.at(0).page_size, "2MB");
  EXPECT_EQ(spec->resources->unified.at("memory.high"), "1000000");
  EXPECT_THAT(spec->security.add_ambient_capabilities, ElementsAre("NET_BIND_SERVICE"));
  v1::ContainerConfig back;
  to_cri_config(*spec, back);
  same(back, config);
}

// ---- statuses --------------------------------------------------------------------

pod::PodStatus sample_pod() {
  pod::PodStatus p;
  p.id = "pod123";
  p.spec = *to_pod_spec(full_pod(), "runc");
  p.state = pod::PodState::ready;
  p.created_at_ns = 1'700'000'000'000'000'000;
  p.ips = {"10.1.0.5", "fd00::5"};
  p.netns_path = "/run/berth/netns/pod123";
  p.cni_result_json = R"({"cniVersion":"1.0.0","ips":[{"address":"10.1.0.5/24"}]})";
  p.pid_holder = 42;
  return p;
}

TEST(CriPodStatus, Fields) {
  auto p = sample_pod();
  v1::PodSandboxStatus s;
  to_cri_status(p, s);
  EXPECT_EQ(s.id(), "pod123");
  EXPECT_EQ(s.metadata().name(), "web");
  EXPECT_EQ(s.metadata().namespace_(), "default");
  EXPECT_EQ(s.metadata().uid(), "uid-1");
  EXPECT_EQ(s.metadata().attempt(), 2u);
  EXPECT_EQ(s.state(), v1::SANDBOX_READY);
  EXPECT_EQ(s.created_at(), p.created_at_ns);
  EXPECT_EQ(s.network().ip(), "10.1.0.5");
  ASSERT_EQ(s.network().additional_ips_size(), 1);
  EXPECT_EQ(s.network().additional_ips(0).ip(), "fd00::5");
  EXPECT_EQ(s.linux().namespaces().options().pid(), v1::CONTAINER);
  EXPECT_EQ(s.labels().at("app"), "web");
  EXPECT_EQ(s.annotations().at("kubernetes.io/config.seen"), "2024-01-01T00:00:00Z");
  EXPECT_EQ(s.runtime_handler(), "runc");

  p.state = pod::PodState::notready;
  p.spec.namespaces.network = pod::NamespaceMode::node;
  v1::PodSandboxStatus host;
  to_cri_status(p, host);
  EXPECT_EQ(host.state(), v1::SANDBOX_NOTREADY);
  EXPECT_EQ(host.network().ip(), "");  // the node's address is kubelet's to know
  EXPECT_EQ(host.linux().namespaces().options().network(), v1::NODE);

  v1::PodSandbox item;
  to_cri_sandbox(sample_pod(), item);
  EXPECT_EQ(item.id(), "pod123");
  EXPECT_EQ(item.metadata().name(), "web");
  EXPECT_EQ(item.state(), v1::SANDBOX_READY);
  EXPECT_EQ(item.runtime_handler(), "runc");
}

TEST(CriPodStatus, VerboseInfo) {
  auto info = nlohmann::json::parse(pod_info_json(sample_pod()));
  EXPECT_EQ(info["pid"], 42);
  EXPECT_EQ(info["netNamespacePath"], "/run/berth/netns/pod123");
  EXPECT_EQ(info["cniResult"]["ips"][0]["address"], "10.1.0.5/24");
  EXPECT_EQ(info["config"]["metadata"]["name"], "web");
  EXPECT_EQ(info["config"]["log_directory"], "/var/log/pods/default_web_uid-1");
}

pod::ContainerStatus sample_container(pod::ContainerState state) {
  pod::ContainerStatus c;
  c.id = "ctr456";
  c.pod_id = "pod123";
  c.spec = *to_container_spec(full_container());
  c.spec.stop_signal.clear();
  c.image_ref = "busybox";
  c.image_id = "sha256:1111";
  c.state = state;
  c.created_at_ns = 100;
  c.started_at_ns = 200;
  c.finished_at_ns = 300;
  c.exit_code = 0;
  c.log_path = "/var/log/pods/default_web_uid-1/app/3.log";
  c.pid = 77;
  return c;
}

TEST(CriContainerStatus, TimesFollowTheState) {
  ImageNames names{"docker.io/library/busybox:latest", "docker.io/library/busybox@sha256:2222", "sha256:1111",
                   "SIGQUIT"};
  v1::ContainerStatus created;
  to_cri_status(sample_container(pod::ContainerState::created), names, created);
  EXPECT_EQ(created.state(), v1::CONTAINER_CREATED);
  EXPECT_EQ(created.created_at(), 100);
  EXPECT_EQ(created.started_at(), 0);
  EXPECT_EQ(created.finished_at(), 0);

  v1::ContainerStatus running;
  to_cri_status(sample_container(pod::ContainerState::running), names, running);
  EXPECT_EQ(running.state(), v1::CONTAINER_RUNNING);
  EXPECT_EQ(running.started_at(), 200);
  EXPECT_EQ(running.finished_at(), 0);
  EXPECT_EQ(running.reason(), "");

  auto done = sample_container(pod::ContainerState::exited);
  v1::ContainerStatus completed;
  to_cri_status(done, names, completed);
  EXPECT_EQ(completed.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(completed.finished_at(), 300);
  EXPECT_EQ(completed.reason(), "Completed");
  done.exit_code = 137;
  v1::ContainerStatus errored;
  to_cri_status(done, names, errored);
  EXPECT_EQ(errored.exit_code(), 137);
  EXPECT_EQ(errored.reason(), "Error");
  done.reason = "OOMKilled";
  done.message = "memory limit";
  v1::ContainerStatus oom;
  to_cri_status(done, names, oom);
  EXPECT_EQ(oom.reason(), "OOMKilled");
  EXPECT_EQ(oom.message(), "memory limit");

  v1::ContainerStatus unknown;
  to_cri_status(sample_container(pod::ContainerState::unknown), names, unknown);
  EXPECT_EQ(unknown.state(), v1::CONTAINER_UNKNOWN);
  EXPECT_EQ(unknown.finished_at(), 300);
}

TEST(CriContainerStatus, Fields) {
  ImageNames names{"docker.io/library/busybox:latest", "docker.io/library/busybox@sha256:2222", "sha256:1111",
                   "SIGQUIT"};
  v1::ContainerStatus s;
  to_cri_status(sample_container(pod::ContainerState::running), names, s);
  EXPECT_EQ(s.id(), "ctr456");
  EXPECT_EQ(s.metadata().name(), "app");
  EXPECT_EQ(s.metadata().attempt(), 3u);
  EXPECT_EQ(s.image().image(), "docker.io/library/busybox:latest");
  EXPECT_EQ(s.image_ref(), "docker.io/library/busybox@sha256:2222");
  EXPECT_EQ(s.image_id(), "sha256:1111");
  EXPECT_EQ(s.labels().at("io.kubernetes.container.name"), "app");
  EXPECT_EQ(s.annotations().at("io.kubernetes.container.hash"), "1234");
  ASSERT_EQ(s.mounts_size(), 1);
  EXPECT_EQ(s.mounts(0).propagation(), v1::PROPAGATION_HOST_TO_CONTAINER);
  EXPECT_TRUE(s.mounts(0).readonly());
  EXPECT_EQ(s.log_path(), "/var/log/pods/default_web_uid-1/app/3.log");
  EXPECT_EQ(s.resources().linux().cpu_shares(), 512);
  // No stop signal in the request: the image's.
  EXPECT_EQ(s.stop_signal(), signal_enum("SIGQUIT"));

  auto own = sample_container(pod::ContainerState::running);
  own.spec.stop_signal = "SIGINT";
  to_cri_status(own, names, s);
  EXPECT_EQ(s.stop_signal(), signal_enum("SIGINT"));
}

TEST(CriContainerStatus, FallbackImageNamesUseTheId) {
  auto c = sample_container(pod::ContainerState::running);
  auto names = fallback_image_names(c);
  EXPECT_EQ(names.spec, c.spec.image);
  EXPECT_EQ(names.ref, "sha256:1111");
  EXPECT_EQ(names.id, "sha256:1111");
  v1::ContainerStatus s;
  to_cri_status(c, names, s);
  EXPECT_EQ(s.stop_signal(), v1::RUNTIME_DEFAULT);  // not known without the image
}

TEST(CriContainerStatus, ListItem) {
  v1::Container item;
  to_cri_container(sample_container(pod::ContainerState::exited), item);
  EXPECT_EQ(item.id(), "ctr456");
  EXPECT_EQ(item.pod_sandbox_id(), "pod123");
  EXPECT_EQ(item.metadata().name(), "app");
  EXPECT_EQ(item.image().image(), "sha256:abc");
  EXPECT_EQ(item.image_ref(), "sha256:1111");
  EXPECT_EQ(item.image_id(), "sha256:1111");
  EXPECT_EQ(item.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(item.created_at(), 100);
}

TEST(CriContainerStatus, VerboseInfo) {
  auto info = nlohmann::json::parse(container_info_json(sample_container(pod::ContainerState::running)));
  EXPECT_EQ(info["sandboxID"], "pod123");
  EXPECT_EQ(info["pid"], 77);
  EXPECT_EQ(info["config"]["metadata"]["name"], "app");
}

// ---- stats -----------------------------------------------------------------------

pod::CgroupStats sample_cgroup() {
  pod::CgroupStats cg;
  cg.timestamp_ns = 5'000'000'000;
  cg.cpu_usage_ns = 3'500'000'000;
  cg.memory_usage_bytes = 300;
  cg.memory_working_set_bytes = 200;
  cg.memory_rss_bytes = 150;
  cg.memory_available_bytes = 800;
  cg.page_faults = 9;
  cg.major_page_faults = 1;
  cg.pids = 4;
  cg.has_cpu = cg.has_memory = true;
  return cg;
}

TEST(CriStats, Container) {
  pod::ContainerStats st;
  st.id = "ctr456";
  st.cgroup = sample_cgroup();
  st.writable_layer_bytes = 4096;
  st.writable_layer_inodes = 12;
  st.filesystem_mountpoint = "/var/lib/berth/snapshots";
  v1::ContainerStats out;
  to_cri_stats(st, sample_container(pod::ContainerState::running), 250'000'000, out);
  EXPECT_EQ(out.attributes().id(), "ctr456");
  EXPECT_EQ(out.attributes().metadata().name(), "app");
  EXPECT_EQ(out.attributes().labels().at("io.kubernetes.container.name"), "app");
  EXPECT_EQ(out.cpu().timestamp(), 5'000'000'000);
  EXPECT_EQ(out.cpu().usage_core_nano_seconds().value(), 3'500'000'000u);
  EXPECT_EQ(out.cpu().usage_nano_cores().value(), 250'000'000u);
  EXPECT_EQ(out.memory().working_set_bytes().value(), 200u);
  EXPECT_EQ(out.memory().available_bytes().value(), 800u);
  EXPECT_EQ(out.memory().usage_bytes().value(), 300u);
  EXPECT_EQ(out.memory().rss_bytes().value(), 150u);
  EXPECT_EQ(out.memory().page_faults().value(), 9u);
  EXPECT_EQ(out.memory().major_page_faults().value(), 1u);
  EXPECT_EQ(out.writable_layer().fs_id().mountpoint(), "/var/lib/berth/snapshots");
  EXPECT_EQ(out.writable_layer().used_bytes().value(), 4096u);
  EXPECT_EQ(out.writable_layer().inodes_used().value(), 12u);

  // An exited container still reports its writable layer, and nothing it lacks.
  st.cgroup = {};
  v1::ContainerStats exited;
  to_cri_stats(st, sample_container(pod::ContainerState::exited), std::nullopt, exited);
  EXPECT_FALSE(exited.has_cpu());
  EXPECT_FALSE(exited.has_memory());
  EXPECT_GT(exited.writable_layer().timestamp(), 0);
}

TEST(CriStats, Pod) {
  pod::PodStats st;
  st.id = "pod123";
  st.cgroup = sample_cgroup();
  v1::PodSandboxStats out;
  to_cri_stats(st, sample_pod(), std::nullopt, out);
  EXPECT_EQ(out.attributes().id(), "pod123");
  EXPECT_EQ(out.attributes().metadata().uid(), "uid-1");
  EXPECT_EQ(out.linux().cpu().usage_core_nano_seconds().value(), 3'500'000'000u);
  EXPECT_FALSE(out.linux().cpu().has_usage_nano_cores());
  EXPECT_EQ(out.linux().memory().working_set_bytes().value(), 200u);
  EXPECT_EQ(out.linux().process().process_count().value(), 4u);
}

TEST(CriStats, CpuUsageRate) {
  CpuUsageRate rate;
  EXPECT_FALSE(rate.sample("a", 1'000'000'000, 0));
  // 0.5 s of CPU over 1 s of wall time: half a core.
  EXPECT_EQ(rate.sample("a", 2'000'000'000, 500'000'000), 500'000'000u);
  // The same reading again repeats the rate instead of dividing by zero.
  EXPECT_EQ(rate.sample("a", 2'000'000'000, 500'000'000), 500'000'000u);
  // A counter that went backwards (new cgroup) gives no rate, then starts over.
  EXPECT_FALSE(rate.sample("a", 3'000'000'000, 100));
  EXPECT_EQ(rate.sample("a", 4'000'000'000, 2'000'000'100), 2'000'000'000u);
  rate.retain({"b"});
  EXPECT_FALSE(rate.sample("a", 5'000'000'000, 3'000'000'000));
}

// ---- metrics ---------------------------------------------------------------------

TEST(CriMetrics, DescriptorsAndValues) {
  v1::ListMetricDescriptorsResponse descriptors;
  fill_metric_descriptors(descriptors);
  std::map<std::string, std::vector<std::string>> keys;
  for (const auto& d : descriptors.descriptors())
    keys[d.name()] = {d.label_keys().begin(), d.label_keys().end()};
  EXPECT_THAT(keys.at("container_cpu_usage_seconds_total"), ElementsAre("id", "name", "image", "cpu"));
  EXPECT_THAT(keys.at("container_memory_working_set_bytes"), ElementsAre("id", "name", "image"));
  // kubelet appends namespace/pod/container itself; a descriptor must not.
  for (const auto& [name, k] : keys)
    for (const char* reserved : {"namespace", "pod", "container"})
      EXPECT_EQ(std::ranges::count(k, reserved), 0) << name;

  pod::PodStats st;
  st.id = "pod123";
  st.cgroup = sample_cgroup();
  pod::ContainerStats cs;
  cs.id = "ctr456";
  cs.cgroup = sample_cgroup();
  st.containers.push_back(cs);
  auto ctr = sample_container(pod::ContainerState::running);
  v1::PodSandboxMetrics out;
  to_cri_metrics(st, sample_pod(), {&ctr}, out);
  EXPECT_EQ(out.pod_sandbox_id(), "pod123");
  ASSERT_EQ(out.container_metrics_size(), 1);
  EXPECT_EQ(out.container_metrics(0).container_id(), "ctr456");
  bool saw_cpu = false, saw_limit = false;
  for (const auto& m : out.container_metrics(0).metrics()) {
    ASSERT_EQ(static_cast<size_t>(m.label_values_size()), keys.at(m.name()).size()) << m.name();
    EXPECT_EQ(m.label_values(0), "ctr456");
    EXPECT_EQ(m.label_values(1), "app");
    EXPECT_EQ(m.timestamp(), 0);
    if (m.name() == "container_cpu_usage_seconds_total") {
      saw_cpu = true;
      EXPECT_EQ(m.value().value(), 3u);
      EXPECT_EQ(m.metric_type(), v1::COUNTER);
      EXPECT_EQ(m.label_values(3), "total");
    }
    if (m.name() == "container_spec_memory_limit_bytes") saw_limit = true;
  }
  EXPECT_TRUE(saw_cpu);
  EXPECT_FALSE(saw_limit);  // the container set no memory limit
  bool pod_limit = false;
  for (const auto& m : out.metrics()) {
    EXPECT_EQ(m.label_values(1), "POD");
    if (m.name() == "container_spec_memory_limit_bytes") {
      pod_limit = true;
      EXPECT_EQ(m.value().value(), 256u << 20);
    }
  }
  EXPECT_TRUE(pod_limit);
}

// ---- filters ---------------------------------------------------------------------

TEST(CriFilters, ResolveId) {
  std::vector<std::string> ids{"abc123", "abd456", "xyz"};
  EXPECT_EQ(*resolve_id("abc123", ids), "abc123");
  EXPECT_EQ(*resolve_id("abc", ids), "abc123");
  EXPECT_EQ(*resolve_id("x", ids), "xyz");
  EXPECT_EQ(resolve_id("ab", ids).error().code, EINVAL);
  EXPECT_EQ(resolve_id("q", ids).error().code, ENOENT);
  EXPECT_EQ(resolve_id("", ids).error().code, EINVAL);
  // An exact id wins over being a prefix of a longer one.
  EXPECT_EQ(*resolve_id("ab", {"ab", "abc"}), "ab");
}

TEST(CriFilters, Pods) {
  std::vector<pod::PodStatus> pods(3, sample_pod());
  pods[0].id = "aaa111";
  pods[1].id = "aab222";
  pods[1].state = pod::PodState::notready;
  pods[2].id = "bbb333";
  pods[2].spec.labels = {{"app", "db"}};
  auto ids = [](const std::vector<const pod::PodStatus*>& v) {
    std::vector<std::string> out;
    for (auto* p : v) out.push_back(p->id);
    return out;
  };
  EXPECT_THAT(ids(select_pods(pods, static_cast<const v1::PodSandboxFilter*>(nullptr))),
              ElementsAre("aaa111", "aab222", "bbb333"));
  v1::PodSandboxFilter f;
  f.set_id("aab");
  EXPECT_THAT(ids(select_pods(pods, &f)), ElementsAre("aab222"));
  f.set_id("aa");  // ambiguous: matches nothing
  EXPECT_TRUE(select_pods(pods, &f).empty());
  f.clear_id();
  f.mutable_state()->set_state(v1::SANDBOX_READY);
  EXPECT_THAT(ids(select_pods(pods, &f)), ElementsAre("aaa111", "bbb333"));
  (*f.mutable_label_selector())["app"] = "db";
  EXPECT_THAT(ids(select_pods(pods, &f)), ElementsAre("bbb333"));

  v1::PodSandboxStatsFilter sf;
  (*sf.mutable_label_selector())["app"] = "web";
  EXPECT_THAT(ids(select_pods(pods, &sf)), ElementsAre("aaa111", "aab222"));
}

TEST(CriFilters, Containers) {
  std::vector<pod::PodStatus> pods(2, sample_pod());
  pods[0].id = "pod-one";
  pods[1].id = "pod-two";
  std::vector<pod::ContainerStatus> ctrs(3, sample_container(pod::ContainerState::running));
  ctrs[0].id = "c1";
  ctrs[0].pod_id = "pod-one";
  ctrs[1].id = "c2";
  ctrs[1].pod_id = "pod-two";
  ctrs[1].state = pod::ContainerState::exited;
  ctrs[2].id = "c3";
  ctrs[2].pod_id = "pod-two";
  ctrs[2].spec.labels = {{"tier", "cache"}};
  auto ids = [](const std::vector<const pod::ContainerStatus*>& v) {
    std::vector<std::string> out;
    for (auto* c : v) out.push_back(c->id);
    return out;
  };
  v1::ContainerFilter f;
  f.set_pod_sandbox_id("pod-t");  // a unique prefix of the pod id
  EXPECT_THAT(ids(select_containers(ctrs, pods, &f)), ElementsAre("c2", "c3"));
  f.mutable_state()->set_state(v1::CONTAINER_RUNNING);
  EXPECT_THAT(ids(select_containers(ctrs, pods, &f)), ElementsAre("c3"));
  f.Clear();
  f.set_id("c2");
  EXPECT_THAT(ids(select_containers(ctrs, pods, &f)), ElementsAre("c2"));
  f.set_pod_sandbox_id("pod-one");
  EXPECT_TRUE(select_containers(ctrs, pods, &f).empty());

  v1::ContainerStatsFilter sf;
  (*sf.mutable_label_selector())["tier"] = "cache";
  EXPECT_THAT(ids(select_containers(ctrs, pods, &sf)), ElementsAre("c3"));
}

// ---- credentials -----------------------------------------------------------------

TEST(CriCredentials, FromAuthConfig) {
  v1::AuthConfig a;
  a.set_auth("dXNlcjpwYTpzcw==");  // user:pa:ss
  auto c = to_registry_credentials(a, "registry.example.com/app:1");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->username, "user");
  EXPECT_EQ(c->password, "pa:ss");

  v1::AuthConfig direct;
  direct.set_username("u");
  direct.set_password("p");
  direct.set_identity_token("idt");
  direct.set_registry_token("rt");
  direct.set_auth("bm90OnVzZWQ=");  // ignored: username given
  c = to_registry_credentials(direct, "busybox");
  EXPECT_EQ(c->username, "u");
  EXPECT_EQ(c->password, "p");
  EXPECT_EQ(c->identity_token, "idt");
  EXPECT_EQ(c->registry_token, "rt");

  v1::AuthConfig bad;
  bad.set_auth("bm9jb2xvbg==");  // "nocolon"
  EXPECT_EQ(to_registry_credentials(bad, "busybox").error().code, EINVAL);
  bad.set_auth("***");
  EXPECT_EQ(to_registry_credentials(bad, "busybox").error().code, EINVAL);
}

TEST(CriCredentials, ServerAddressMustMatchTheImagesRegistry) {
  EXPECT_TRUE(server_address_matches("https://index.docker.io/v1/", "docker.io"));
  EXPECT_TRUE(server_address_matches("registry-1.docker.io", "docker.io"));
  EXPECT_TRUE(server_address_matches("Registry.Example.com:5000", "registry.example.com:5000"));
  EXPECT_TRUE(server_address_matches("*.example.com", "eu.example.com"));
  EXPECT_FALSE(server_address_matches("*.example.com", "a.b.example.com"));
  EXPECT_FALSE(server_address_matches("registry.example.com", "registry.example.com:5000"));
  EXPECT_FALSE(server_address_matches("evil.example", "docker.io"));

  v1::AuthConfig a;
  a.set_username("u");
  a.set_password("p");
  a.set_server_address("https://other.example.com");
  auto c = to_registry_credentials(a, "registry.example.com/app");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->username.empty());
  EXPECT_TRUE(c->password.empty());
  a.set_server_address("registry.example.com");
  EXPECT_EQ(to_registry_credentials(a, "registry.example.com/app")->username, "u");
}

// ---- images ----------------------------------------------------------------------

TEST(CriImages, UserFromImageConfig) {
  v1::Image numeric;
  fill_image_user("1000:1000", numeric);
  EXPECT_TRUE(numeric.has_uid());
  EXPECT_EQ(numeric.uid().value(), 1000);
  EXPECT_EQ(numeric.username(), "");
  v1::Image named;
  fill_image_user("nginx", named);
  EXPECT_FALSE(named.has_uid());
  EXPECT_EQ(named.username(), "nginx");
  v1::Image none;
  fill_image_user("", none);
  EXPECT_FALSE(none.has_uid());
  EXPECT_EQ(none.username(), "");
}

TEST(CriImages, ToCri) {
  storage::Image image;
  image.id = "sha256:1111";
  image.repo_tags = {"docker.io/library/busybox:latest"};
  image.repo_digests = {"docker.io/library/busybox@sha256:2222"};
  image.size = 4096;
  image.config.defaults.user = "0";
  v1::Image out;
  to_cri_image(image, out);
  EXPECT_EQ(out.id(), "sha256:1111");
  EXPECT_THAT(out.repo_tags(), ElementsAre("docker.io/library/busybox:latest"));
  EXPECT_THAT(out.repo_digests(), ElementsAre("docker.io/library/busybox@sha256:2222"));
  EXPECT_EQ(out.size(), 4096u);
  EXPECT_EQ(out.uid().value(), 0);
  EXPECT_EQ(out.spec().image(), "sha256:1111");
  EXPECT_FALSE(out.pinned());
  auto info = nlohmann::json::parse(image_info_json(image));
  EXPECT_EQ(info["id"], "sha256:1111");
  EXPECT_EQ(info["imageSpec"]["config"]["User"], "0");
}

// ---- events ----------------------------------------------------------------------

TEST(CriEvents, QueueHandsEventsOverInOrder) {
  EventQueue q(4);
  pod::Event a{pod::EventType::container_created, "c1", "p1", 1};
  pod::Event b{pod::EventType::container_started, "c1", "p1", 2};
  EXPECT_EQ(q.push(a), EventQueue::Push::queued);
  EXPECT_EQ(q.push(b), EventQueue::Push::queued);
  auto soon = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
  EXPECT_EQ(q.pop(soon)->at_ns, 1);
  EXPECT_EQ(q.pop(soon)->at_ns, 2);
  EXPECT_FALSE(q.pop(std::chrono::steady_clock::now() + std::chrono::milliseconds(10)));
}

TEST(CriEvents, FullQueueDropsTheSubscriberWithoutBlocking) {
  EventQueue q(2);
  pod::Event e{pod::EventType::container_stopped, "c1", "p1", 1};
  EXPECT_EQ(q.push(e), EventQueue::Push::queued);
  EXPECT_EQ(q.push(e), EventQueue::Push::queued);
  EXPECT_EQ(q.push(e), EventQueue::Push::overflowed);
  EXPECT_EQ(q.push(e), EventQueue::Push::dropped);
  EXPECT_TRUE(q.overflowed());
  // What was queued is useless once events were lost: the client must relist.
  EXPECT_FALSE(q.pop(std::chrono::steady_clock::now() + std::chrono::milliseconds(10)));
}

TEST(CriEvents, CloseWakesAWaitingReader) {
  EventQueue q(2);
  std::thread closer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    q.close();
  });
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(q.pop(start + std::chrono::seconds(10)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  closer.join();
  EXPECT_EQ(q.push({}), EventQueue::Push::dropped);
}

}  // namespace
}  // namespace berth::cri
