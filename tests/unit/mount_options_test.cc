// Unit tests for runtime/linux/mount_options: OCI mount options -> mount(2) flags,
// propagation, mount_setattr attributes and the filesystem data string.
#include <linux/mount.h>
#include <sys/mount.h>

#include <algorithm>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/linux/mount_options.h"

namespace berth {
namespace {

MountOptions parse_ok(const std::vector<std::string>& opts) {
  auto r = parse_mount_options(opts);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  return r ? *r : MountOptions{};
}

TEST(MountOptionsFlags, EachSetFlag) {
  struct Case {
    const char* name;
    unsigned long flag;
  };
  const Case cases[] = {
      {"ro", MS_RDONLY},           {"nosuid", MS_NOSUID},         {"nodev", MS_NODEV},
      {"noexec", MS_NOEXEC},       {"relatime", MS_RELATIME},     {"strictatime", MS_STRICTATIME},
      {"noatime", MS_NOATIME},     {"nodiratime", MS_NODIRATIME}, {"sync", MS_SYNCHRONOUS},
      {"dirsync", MS_DIRSYNC},     {"mand", MS_MANDLOCK},         {"remount", MS_REMOUNT},
      {"silent", MS_SILENT},       {"lazytime", MS_LAZYTIME},     {"iversion", MS_I_VERSION},
      {"nosymfollow", MS_NOSYMFOLLOW},
  };
  for (auto& c : cases) {
    MountOptions o = parse_ok({c.name});
    EXPECT_EQ(o.flags, c.flag) << c.name;
    EXPECT_EQ(o.cleared, 0u) << c.name;
    EXPECT_EQ(o.data, "") << c.name;
    EXPECT_FALSE(o.bind) << c.name;
    EXPECT_EQ(o.propagation, 0u) << c.name;
  }
}

TEST(MountOptionsFlags, Combined) {
  MountOptions o = parse_ok({"nosuid", "noexec", "nodev", "ro", "relatime"});
  EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY | MS_RELATIME));
  EXPECT_EQ(o.data, "");
  MountOptions d = parse_ok({"defaults"});
  EXPECT_EQ(d.flags, 0u);
  EXPECT_EQ(d.data, "");  // "defaults" is known, not passed to the filesystem
}

TEST(MountOptionsFlags, ClearingOptions) {
  MountOptions o = parse_ok({"ro", "rw"});
  EXPECT_EQ(o.flags & MS_RDONLY, 0u);
  EXPECT_EQ(o.cleared & MS_RDONLY, static_cast<unsigned long>(MS_RDONLY));

  // Last one wins, in both directions.
  o = parse_ok({"rw", "ro"});
  EXPECT_EQ(o.flags & MS_RDONLY, static_cast<unsigned long>(MS_RDONLY));
  EXPECT_EQ(o.cleared & MS_RDONLY, 0u);

  o = parse_ok({"nosuid", "suid"});
  EXPECT_EQ(o.flags & MS_NOSUID, 0u);
  EXPECT_NE(o.cleared & MS_NOSUID, 0u);

  o = parse_ok({"nodev", "dev", "noexec", "exec"});
  EXPECT_EQ(o.flags, 0u);
  EXPECT_EQ(o.cleared, static_cast<unsigned long>(MS_NODEV | MS_NOEXEC));

  o = parse_ok({"suid"});
  EXPECT_EQ(o.flags, 0u);
  EXPECT_EQ(o.cleared, static_cast<unsigned long>(MS_NOSUID));

  o = parse_ok({"atime", "norelatime", "nostrictatime", "async", "loud", "symfollow"});
  EXPECT_EQ(o.flags, 0u);
  EXPECT_EQ(o.cleared, static_cast<unsigned long>(MS_NOATIME | MS_RELATIME | MS_STRICTATIME | MS_SYNCHRONOUS |
                                                  MS_SILENT | MS_NOSYMFOLLOW));
  EXPECT_EQ(o.data, "");
}

TEST(MountOptionsBind, BindAndRbind) {
  MountOptions b = parse_ok({"bind"});
  EXPECT_TRUE(b.bind);
  EXPECT_FALSE(b.recursive);
  // bind/rec travel as booleans, not in flags, so a remount never carries MS_BIND by accident.
  EXPECT_EQ(b.flags & (MS_BIND | MS_REC), 0u);

  MountOptions r = parse_ok({"rbind", "ro"});
  EXPECT_TRUE(r.bind);
  EXPECT_TRUE(r.recursive);
  EXPECT_EQ(r.flags, static_cast<unsigned long>(MS_RDONLY));

  MountOptions none = parse_ok({"ro", "nosuid"});
  EXPECT_FALSE(none.bind);
  EXPECT_FALSE(none.recursive);
}

TEST(MountOptionsPropagation, OptionsSetPropagation) {
  struct Case {
    const char* name;
    unsigned long flags;
  };
  const Case cases[] = {
      {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},   {"shared", MS_SHARED},
      {"rshared", MS_SHARED | MS_REC}, {"slave", MS_SLAVE},               {"rslave", MS_SLAVE | MS_REC},
      {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
  };
  for (auto& c : cases) {
    MountOptions o = parse_ok({"bind", c.name});
    EXPECT_EQ(o.propagation, c.flags) << c.name;
    EXPECT_EQ(o.data, "") << c.name;
    // A propagation option must not make a plain bind recursive.
    EXPECT_FALSE(o.recursive) << c.name;
    EXPECT_EQ(o.flags, 0u) << c.name;
  }
  // The last propagation option wins.
  EXPECT_EQ(parse_ok({"rshared", "private"}).propagation, static_cast<unsigned long>(MS_PRIVATE));
}

TEST(MountOptionsPropagation, ParsePropagation) {
  EXPECT_EQ(parse_propagation("rslave").value_or(1), static_cast<unsigned long>(MS_SLAVE | MS_REC));
  EXPECT_EQ(parse_propagation("slave").value_or(1), static_cast<unsigned long>(MS_SLAVE));
  EXPECT_EQ(parse_propagation("rprivate").value_or(1), static_cast<unsigned long>(MS_PRIVATE | MS_REC));
  EXPECT_EQ(parse_propagation("private").value_or(1), static_cast<unsigned long>(MS_PRIVATE));
  EXPECT_EQ(parse_propagation("rshared").value_or(1), static_cast<unsigned long>(MS_SHARED | MS_REC));
  EXPECT_EQ(parse_propagation("shared").value_or(1), static_cast<unsigned long>(MS_SHARED));
  EXPECT_EQ(parse_propagation("runbindable").value_or(1), static_cast<unsigned long>(MS_UNBINDABLE | MS_REC));
  EXPECT_EQ(parse_propagation("unbindable").value_or(1), static_cast<unsigned long>(MS_UNBINDABLE));
  EXPECT_EQ(parse_propagation("").value_or(1), 0u);
  auto bad = parse_propagation("rslavish");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, EINVAL);
  EXPECT_THAT(bad.error().message, ::testing::HasSubstr("rslavish"));
  EXPECT_FALSE(parse_propagation("RSLAVE").has_value());
  EXPECT_FALSE(parse_propagation("ro").has_value());
}

TEST(MountOptionsAttrs, RecursiveAttributes) {
  struct Case {
    const char* name;
    uint64_t attr;
  };
  const Case set_cases[] = {
      {"rro", MOUNT_ATTR_RDONLY},           {"rnosuid", MOUNT_ATTR_NOSUID},
      {"rnodev", MOUNT_ATTR_NODEV},         {"rnoexec", MOUNT_ATTR_NOEXEC},
      {"rnodiratime", MOUNT_ATTR_NODIRATIME}, {"rrelatime", MOUNT_ATTR_RELATIME},
      {"rnoatime", MOUNT_ATTR_NOATIME},     {"rstrictatime", MOUNT_ATTR_STRICTATIME},
      {"rnosymfollow", MOUNT_ATTR_NOSYMFOLLOW},
  };
  for (auto& c : set_cases) {
    MountOptions o = parse_ok({"rbind", c.name});
    EXPECT_EQ(o.attr_set, c.attr) << c.name;
    EXPECT_EQ(o.attr_clr, 0u) << c.name;
    EXPECT_EQ(o.flags, 0u) << c.name;  // recursive attrs do not leak into mount(2) flags
    EXPECT_EQ(o.data, "") << c.name;
  }
  const Case clr_cases[] = {
      {"rrw", MOUNT_ATTR_RDONLY},   {"rsuid", MOUNT_ATTR_NOSUID},       {"rdev", MOUNT_ATTR_NODEV},
      {"rexec", MOUNT_ATTR_NOEXEC}, {"rdiratime", MOUNT_ATTR_NODIRATIME}, {"rnorelatime", MOUNT_ATTR_RELATIME},
      {"ratime", MOUNT_ATTR_NOATIME}, {"rnostrictatime", MOUNT_ATTR_STRICTATIME},
      {"rsymfollow", MOUNT_ATTR_NOSYMFOLLOW},
  };
  for (auto& c : clr_cases) {
    MountOptions o = parse_ok({c.name});
    EXPECT_EQ(o.attr_clr, c.attr) << c.name;
    EXPECT_EQ(o.attr_set, 0u) << c.name;
  }
  MountOptions both = parse_ok({"rro", "rnosuid", "rnodev"});
  EXPECT_EQ(both.attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
  MountOptions flip = parse_ok({"rro", "rrw"});
  EXPECT_EQ(flip.attr_set, 0u);
  EXPECT_EQ(flip.attr_clr, MOUNT_ATTR_RDONLY);
  flip = parse_ok({"rrw", "rro"});
  EXPECT_EQ(flip.attr_set, MOUNT_ATTR_RDONLY);
  EXPECT_EQ(flip.attr_clr, 0u);
}

TEST(MountOptionsData, UnknownOptionsKeptInOrder) {
  MountOptions o = parse_ok({"nosuid", "mode=755", "strictatime", "size=65536k"});
  EXPECT_EQ(o.data, "mode=755,size=65536k");
  EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_NOSUID | MS_STRICTATIME));

  MountOptions pts = parse_ok({"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"});
  EXPECT_EQ(pts.data, "newinstance,ptmxmode=0666,mode=0620,gid=5");

  MountOptions ovl = parse_ok({"lowerdir=/a:/b", "upperdir=/u", "workdir=/w"});
  EXPECT_EQ(ovl.data, "lowerdir=/a:/b,upperdir=/u,workdir=/w");
  EXPECT_EQ(ovl.flags, 0u);

  EXPECT_EQ(parse_ok({}).data, "");
}

TEST(MountOptionsData, IdmapRejected) {
  for (const char* opt : {"idmap", "ridmap"}) {
    auto r = parse_mount_options({"rbind", opt});
    ASSERT_FALSE(r.has_value()) << opt;
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_THAT(r.error().message, ::testing::HasSubstr(opt));
  }
  // An idmap given as a data-looking option with a value is not the OCI idmap option.
  EXPECT_TRUE(parse_mount_options({"idmapped=1"}).has_value());
}

TEST(MountOptionsKnown, ListsEveryOption) {
  auto known = known_mount_options();
  for (const char* name :
       {"ro",     "rw",     "nosuid",  "suid",     "nodev",      "dev",         "noexec",   "exec",  "relatime",
        "norelatime", "strictatime", "nostrictatime", "noatime", "atime", "nodiratime", "diratime", "sync", "async",
        "dirsync", "mand", "nomand", "remount", "bind", "rbind", "defaults", "silent", "loud", "lazytime",
        "nolazytime", "iversion", "noiversion", "nosymfollow", "symfollow", "private", "rprivate", "shared",
        "rshared", "slave", "rslave", "unbindable", "runbindable", "rro", "rrw", "rnosuid", "rsuid", "rnodev",
        "rdev", "rnoexec", "rexec", "rnodiratime", "rdiratime", "rrelatime", "rnorelatime", "rnoatime", "ratime",
        "rstrictatime", "rnostrictatime", "rnosymfollow", "rsymfollow"}) {
    EXPECT_NE(std::find(known.begin(), known.end(), name), known.end()) << name;
  }
  // No duplicates, and nothing berth passes through as data.
  auto sorted = known;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
  EXPECT_EQ(std::find(known.begin(), known.end(), "mode=755"), known.end());
  // Every listed option parses without landing in data.
  for (auto& name : known) {
    auto r = parse_mount_options({name});
    ASSERT_TRUE(r.has_value()) << name;
    EXPECT_EQ(r->data, "") << name;
  }
}

}  // namespace
}  // namespace berth
