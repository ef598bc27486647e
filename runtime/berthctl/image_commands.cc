#include "runtime/berthctl/image_commands.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "runtime/berthctl/pull_progress.h"

namespace berth::ctl {

using nlohmann::json;
using storage::Image;

namespace {

int report(const Error& e) {
  std::fprintf(stderr, "berthctl: %s\n", e.message.c_str());
  return 1;
}

std::string human_size(int64_t bytes) {
  char buf[32];
  double v = static_cast<double>(bytes);
  const char* unit = "B";
  if (v >= 1e9) {
    v /= 1e9;
    unit = "GB";
  } else if (v >= 1e6) {
    v /= 1e6;
    unit = "MB";
  } else if (v >= 1e3) {
    v /= 1e3;
    unit = "kB";
  }
  snprintf(buf, sizeof buf, "%.3g %s", v, unit);
  return buf;
}

std::string short_id(const std::string& id) { return id.substr(id.find(':') + 1, 12); }

json image_json(const Image& image) {
  json layers = json::array();
  for (size_t i = 0; i < image.layers.size(); ++i) {
    json l = {{"digest", image.layers[i].digest.str()}, {"mediaType", image.layers[i].media_type},
              {"size", image.layers[i].size}};
    if (i < image.config.diff_ids.size()) l["diffID"] = image.config.diff_ids[i].str();
    layers.push_back(std::move(l));
  }
  const auto& d = image.config.defaults;
  return {{"id", image.id},
          {"repoTags", image.repo_tags},
          {"repoDigests", image.repo_digests},
          {"size", image.size},
          {"pulledAt", image.created_at},
          {"manifestDigest", image.manifest_digest},
          {"manifestMediaType", image.manifest_media_type},
          {"chainID", image.chain_id},
          {"os", image.config.os},
          {"architecture", image.config.architecture},
          {"created", image.config.created},
          {"config",
           {{"entrypoint", d.entrypoint},
            {"cmd", d.cmd},
            {"env", d.env},
            {"workingDir", d.working_dir},
            {"user", d.user},
            {"exposedPorts", d.exposed_ports},
            {"volumes", d.volumes},
            {"stopSignal", d.stop_signal},
            {"labels", d.labels}}},
          {"layers", layers}};
}

// "repo:tag" split for the table; digest-only images show <none>.
std::pair<std::string, std::string> repo_and_tag(const std::string& name) {
  auto colon = name.rfind(':');
  return {name.substr(0, colon), name.substr(colon + 1)};
}

}  // namespace

void add_image_commands(CLI::App& app, StoreOpener open_store, std::function<int()>& run) {
  // pull
  auto* pull = app.add_subcommand("pull", "Pull an image from a registry");
  auto pull_ref = std::make_shared<std::string>();
  auto pull_user = std::make_shared<std::string>();
  auto pull_quiet = std::make_shared<bool>(false);
  pull->add_option("reference", *pull_ref, "Image reference (busybox, registry:5000/app:1.0, name@sha256:…)")->required();
  pull->add_option("--user,-u", *pull_user, "Registry credentials USER[:PASSWORD]");
  pull->add_flag("--quiet,-q", *pull_quiet, "Print only the image ID");
  pull->callback([=, &run] {
    run = [=]() -> int {
      auto store = open_store();
      if (!store) return report(store.error());
      storage::RegistryCredentials creds;
      if (!pull_user->empty()) {
        auto colon = pull_user->find(':');
        creds.username = pull_user->substr(0, colon);
        if (colon != std::string::npos) creds.password = pull_user->substr(colon + 1);
      }
      auto view = std::make_shared<PullProgressView>(stderr, ::isatty(STDERR_FILENO) == 1);
      storage::PullProgressFn progress;
      if (!*pull_quiet) progress = [view](const storage::PullProgress& p) { view->update(p); };
      auto image = (*store)->pull(*pull_ref, creds, progress);
      view->finish();
      if (!image) return report(image.error());
      if (*pull_quiet) {
        std::printf("%s\n", image->id.c_str());
      } else {
        std::printf("pulled %s (%s, %s)\n", pull_ref->c_str(), image->id.c_str(), human_size(image->size).c_str());
      }
      return 0;
    };
  });

  // images
  auto* images = app.add_subcommand("images", "List images");
  auto images_quiet = std::make_shared<bool>(false);
  auto images_digests = std::make_shared<bool>(false);
  auto images_json = std::make_shared<bool>(false);
  images->add_flag("--quiet,-q", *images_quiet, "Print only image IDs");
  images->add_flag("--digests", *images_digests, "Show repo digests");
  images->add_flag("--json", *images_json, "Print JSON");
  images->callback([=, &run] {
    run = [=]() -> int {
      auto store = open_store();
      if (!store) return report(store.error());
      auto list = (*store)->list();
      if (!list) return report(list.error());
      if (*images_json) {
        json out = json::array();
        for (auto& image : *list) out.push_back(image_json(image));
        std::printf("%s\n", out.dump(2).c_str());
        return 0;
      }
      if (*images_quiet) {
        for (auto& image : *list) std::printf("%s\n", image.id.c_str());
        return 0;
      }
      std::printf("%-50s %-16s %-14s%s %s\n", "REPOSITORY", "TAG", "IMAGE ID", *images_digests ? " DIGEST                                                                 " : "", "SIZE");
      for (auto& image : *list) {
        std::vector<std::pair<std::string, std::string>> rows;
        for (auto& tag : image.repo_tags) rows.push_back(repo_and_tag(tag));
        if (rows.empty()) rows.push_back({"<none>", "<none>"});
        std::string digest = image.repo_digests.empty() ? "<none>" : image.repo_digests.front().substr(image.repo_digests.front().find('@') + 1);
        for (auto& [repo, tag] : rows) {
          std::printf("%-50s %-16s %-14s%s %s\n", repo.c_str(), tag.c_str(), short_id(image.id).c_str(),
                      *images_digests ? (" " + digest).c_str() : "", human_size(image.size).c_str());
        }
      }
      return 0;
    };
  });

  // inspect
  auto* inspect = app.add_subcommand("inspect", "Show an image as JSON");
  auto inspect_refs = std::make_shared<std::vector<std::string>>();
  inspect->add_option("image", *inspect_refs, "Name or ID")->required();
  inspect->callback([=, &run] {
    run = [=]() -> int {
      auto store = open_store();
      if (!store) return report(store.error());
      json out = json::array();
      int rc = 0;
      for (auto& ref : *inspect_refs) {
        auto image = (*store)->get(ref);
        if (!image) {
          rc = report(image.error());
          continue;
        }
        out.push_back(image_json(*image));
      }
      std::printf("%s\n", out.dump(2).c_str());
      return rc;
    };
  });

  // rmi
  auto* rmi = app.add_subcommand("rmi", "Remove image names (by name) or whole images (by ID)");
  auto rmi_refs = std::make_shared<std::vector<std::string>>();
  rmi->add_option("image", *rmi_refs, "Name or ID")->required();
  rmi->callback([=, &run] {
    run = [=]() -> int {
      auto store = open_store();
      if (!store) return report(store.error());
      int rc = 0;
      for (auto& ref : *rmi_refs) {
        if (auto r = (*store)->remove(ref); !r) {
          rc = report(r.error());
        } else {
          std::printf("removed %s\n", ref.c_str());
        }
      }
      return rc;
    };
  });

  // import
  auto* import = app.add_subcommand("import", "Import an OCI image layout (dir or tar) or a docker save archive");
  auto import_path = std::make_shared<std::string>();
  auto import_name = std::make_shared<std::string>();
  import->add_option("path", *import_path, "Layout directory or archive")->required();
  import->add_option("--name", *import_name, "Name for unnamed images, or the repository for tag-only names");
  import->callback([=, &run] {
    run = [=]() -> int {
      auto store = open_store();
      if (!store) return report(store.error());
      auto imported = (*store)->import(*import_path, *import_name);
      if (!imported) return report(imported.error());
      for (auto& image : *imported) {
        for (auto& tag : image.repo_tags) std::printf("imported %s (%s)\n", tag.c_str(), image.id.c_str());
      }
      return 0;
    };
  });

  // df
  auto* df = app.add_subcommand("df", "Disk used by the image store");
  auto df_json = std::make_shared<bool>(false);
  df->add_flag("--json", *df_json, "Print JSON");
  df->callback([=, &run] {
    run = [=]() -> int {
      auto store = open_store();
      if (!store) return report(store.error());
      auto u = (*store)->usage();
      if (!u) return report(u.error());
      if (*df_json) {
        json out = {{"mountpoint", u->mountpoint},
                    {"usedBytes", u->bytes()},
                    {"inodesUsed", u->inodes()},
                    {"snapshots", {{"bytes", u->snapshots.bytes}, {"inodes", u->snapshots.inodes}}},
                    {"content", {{"bytes", u->content.bytes}, {"inodes", u->content.inodes}}}};
        std::printf("%s\n", out.dump(2).c_str());
        return 0;
      }
      std::printf("%-12s %14s %10s\n", "PART", "BYTES", "INODES");
      std::printf("%-12s %14lld %10lld\n", "snapshots", static_cast<long long>(u->snapshots.bytes),
                  static_cast<long long>(u->snapshots.inodes));
      std::printf("%-12s %14lld %10lld\n", "content", static_cast<long long>(u->content.bytes),
                  static_cast<long long>(u->content.inodes));
      std::printf("%-12s %14lld %10lld\n", "total", static_cast<long long>(u->bytes()),
                  static_cast<long long>(u->inodes()));
      return 0;
    };
  });

  // prune
  auto* prune = app.add_subcommand("prune", "Remove unnamed images, unused blobs and snapshots");
  prune->callback([=, &run] {
    run = [=]() -> int {
      auto store = open_store();
      if (!store) return report(store.error());
      auto r = (*store)->garbage_collect();
      if (!r) return report(r.error());
      std::printf("removed %d images, %d blobs, %d snapshots\n", r->images, r->blobs, r->snapshots);
      return 0;
    };
  });
}

}  // namespace berth::ctl
