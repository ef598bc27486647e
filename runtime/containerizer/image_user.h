// Who a container runs as: an image-style user string ("name", "uid", "uid:gid",
// "name:group") resolved against the image's own /etc/passwd and /etc/group. Both
// files are opened with RESOLVE_IN_ROOT, so an image whose /etc/passwd is a symlink
// to "../../../etc/passwd" reads its own files, never the host's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace berth::pod {

struct ImageUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string name;  // the passwd entry's name; "" when the uid has no entry
  std::string home;  // the passwd entry's home; "" when the uid has no entry
};

// "" means root. A numeric uid needs no entry (its gid is then 0 unless given, as
// containerd does); a user or group *name* that the image does not list is ENOENT.
// A malformed string or an id outside 0..2^32-2 is EINVAL.
Result<ImageUser> resolve_image_user(const std::string& rootfs, const std::string& user);

// gids of the image's /etc/group entries that list `user_name` as a member, sorted
// and without duplicates. No /etc/group, or an empty name, gives none.
Result<std::vector<uint32_t>> image_member_groups(const std::string& rootfs, const std::string& user_name);

}  // namespace berth::pod
