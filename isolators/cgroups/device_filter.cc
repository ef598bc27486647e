// BPF_PROG_TYPE_CGROUP_DEVICE program generation and attachment.
#include "isolators/cgroups/device_filter.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "common/unique_fd.h"

namespace berth::cgroups {
namespace {

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  return i;
}

bpf_insn ldx_w(uint8_t dst, uint8_t src, int16_t off) { return insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0); }
bpf_insn alu32_imm(uint8_t op, uint8_t dst, int32_t imm) { return insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm); }
bpf_insn mov32_reg(uint8_t dst, uint8_t src) { return insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn jne_imm(uint8_t dst, int32_t imm, int16_t off) { return insn(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm); }
bpf_insn jne_reg(uint8_t dst, uint8_t src, int16_t off) { return insn(BPF_JMP | BPF_JNE | BPF_X, dst, src, off, 0); }
bpf_insn exit_insn() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

long bpf(int cmd, bpf_attr* attr) { return syscall(SYS_bpf, cmd, attr, sizeof(*attr)); }

}  // namespace

Result<std::vector<bpf_insn>> device_filter_program(const std::vector<oci::DeviceRule>& rules) {
  std::vector<bpf_insn> prog = {
      // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
      ldx_w(BPF_REG_2, BPF_REG_1, 0),            // r2 = access_type
      alu32_imm(BPF_AND, BPF_REG_2, 0xFFFF),     // r2 &= 0xffff   (device type)
      ldx_w(BPF_REG_3, BPF_REG_1, 0),            // r3 = access_type
      alu32_imm(BPF_RSH, BPF_REG_3, 16),         // r3 >>= 16      (access bits)
      ldx_w(BPF_REG_4, BPF_REG_1, 4),            // r4 = major
      ldx_w(BPF_REG_5, BPF_REG_1, 8),            // r5 = minor
  };
  bool catch_all = false;
  for (auto it = rules.rbegin(); it != rules.rend() && !catch_all; ++it) {
    const auto& rule = *it;
    int32_t type = 0;
    if (rule.type == "c") type = BPF_DEVCG_DEV_CHAR;
    else if (rule.type == "b") type = BPF_DEVCG_DEV_BLOCK;
    else if (!rule.type.empty() && rule.type != "a")
      return invalid("resources.devices: invalid type \"" + rule.type + "\"");
    int32_t access = 0;
    for (char c : rule.access.empty() ? std::string("rwm") : rule.access) {
      if (c == 'r') access |= BPF_DEVCG_ACC_READ;
      else if (c == 'w') access |= BPF_DEVCG_ACC_WRITE;
      else if (c == 'm') access |= BPF_DEVCG_ACC_MKNOD;
      else return invalid("resources.devices: invalid access \"" + rule.access + "\"");
    }
    auto number = [](const std::optional<int64_t>& v, bool* wildcard) -> Result<int32_t> {
      *wildcard = !v || *v == -1;
      if (*wildcard) return 0;
      if (*v < 0 || *v > INT32_MAX) return invalid("resources.devices: invalid major/minor " + std::to_string(*v));
      return static_cast<int32_t>(*v);
    };
    bool any_major, any_minor;
    int32_t major = BERTH_TRY(number(rule.major, &any_major));
    int32_t minor = BERTH_TRY(number(rule.minor, &any_minor));
    // A type "a" rule matches every device, whatever major/minor say (as on v1).
    if (type == 0) any_major = any_minor = true;
    const bool all_access = access == (BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD);

    // Checks jump past this block (to the next rule) on mismatch; the offset of
    // each is the number of instructions left in the block after it.
    const int checks = (type ? 1 : 0) + (all_access ? 0 : 3) + (any_major ? 0 : 1) + (any_minor ? 0 : 1);
    const int block = checks + 2;
    int emitted = 0;
    auto skip = [&] { return static_cast<int16_t>(block - (++emitted)); };
    if (type) prog.push_back(jne_imm(BPF_REG_2, type, skip()));
    if (!all_access) {
      // if ((r3 & access) != r3) the request wants an access the rule lacks.
      prog.push_back(mov32_reg(BPF_REG_1, BPF_REG_3));
      ++emitted;
      prog.push_back(alu32_imm(BPF_AND, BPF_REG_1, access));
      ++emitted;
      prog.push_back(jne_reg(BPF_REG_1, BPF_REG_3, skip()));
    }
    if (!any_major) prog.push_back(jne_imm(BPF_REG_4, major, skip()));
    if (!any_minor) prog.push_back(jne_imm(BPF_REG_5, minor, skip()));
    prog.push_back(alu32_imm(BPF_MOV, BPF_REG_0, rule.allow ? 1 : 0));
    prog.push_back(exit_insn());
    catch_all = checks == 0;
  }
  if (!catch_all) {
    prog.push_back(alu32_imm(BPF_MOV, BPF_REG_0, 0));
    prog.push_back(exit_insn());
  }
  return prog;
}

Result<> attach_device_filter(const std::string& cgroup2_dir, const std::vector<oci::DeviceRule>& rules) {
  auto prog = BERTH_TRY(device_filter_program(rules));
  UniqueFd dir(::open(cgroup2_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return sys_fail("open " + cgroup2_dir);

  // Programs already attached: replaced once the new one is in place, so there is no
  // window in which the cgroup has no device filter at all.
  std::vector<uint32_t> old_ids(64);
  {
    bpf_attr attr{};
    attr.query.target_fd = dir.get();
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = reinterpret_cast<uintptr_t>(old_ids.data());
    attr.query.prog_cnt = old_ids.size();
    if (bpf(BPF_PROG_QUERY, &attr) < 0) return sys_fail("bpf(BPF_PROG_QUERY) on " + cgroup2_dir);
    old_ids.resize(std::min<size_t>(attr.query.prog_cnt, old_ids.size()));
  }

  static const char license[] = "Apache";
  std::string log(65536, '\0');
  bpf_attr load{};
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uintptr_t>(prog.data());
  load.insn_cnt = prog.size();
  load.license = reinterpret_cast<uintptr_t>(license);
  load.log_buf = reinterpret_cast<uintptr_t>(log.data());
  load.log_size = log.size();
  load.log_level = 1;
  UniqueFd prog_fd(static_cast<int>(bpf(BPF_PROG_LOAD, &load)));
  if (!prog_fd) {
    int err = errno;
    log.resize(std::strlen(log.c_str()));
    return fail(err, "bpf(BPF_PROG_LOAD) device filter: " + std::string(std::strerror(err)) +
                         (log.empty() ? "" : " (verifier: " + log + ")"));
  }

  bpf_attr attach{};
  attach.target_fd = dir.get();
  attach.attach_bpf_fd = prog_fd.get();
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (bpf(BPF_PROG_ATTACH, &attach) < 0) return sys_fail("bpf(BPF_PROG_ATTACH) device filter to " + cgroup2_dir);

  for (uint32_t id : old_ids) {
    bpf_attr get{};
    get.prog_id = id;
    UniqueFd old(static_cast<int>(bpf(BPF_PROG_GET_FD_BY_ID, &get)));
    if (!old) {
      if (errno == ENOENT) continue;
      return sys_fail("bpf(BPF_PROG_GET_FD_BY_ID) old device filter");
    }
    bpf_attr detach{};
    detach.target_fd = dir.get();
    detach.attach_bpf_fd = old.get();
    detach.attach_type = BPF_CGROUP_DEVICE;
    if (bpf(BPF_PROG_DETACH, &detach) < 0 && errno != ENOENT)
      return sys_fail("bpf(BPF_PROG_DETACH) old device filter from " + cgroup2_dir);
  }
  return {};
}

}  // namespace berth::cgroups
