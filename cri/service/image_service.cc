#include "cri/service/image_service.h"

#include <cerrno>
#include <charconv>
#include <chrono>
#include <nlohmann/json.hpp>
#include <vector>

#include "cri/grpc/grpc_server.h"
#include "cri/service/cri_errors.h"
#include "cri/service/pull_credentials.h"
#include "cri/service/stream_batches.h"
#include "storage/image_store.h"

namespace berth::cri {

namespace {

using grpc::StatusCode;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

grpc::CallStatus failed(const Error& error, std::string_view context) { return to_call_status(error.wrap(context)); }

}  // namespace

void fill_image_user(const std::string& user, v1::Image& out) {
  // Only the user part counts; a number is a uid, anything else a name.
  std::string_view name = std::string_view(user).substr(0, user.find(':'));
  if (name.empty()) return;
  int64_t uid = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), uid);
  if (ec == std::errc() && end == name.data() + name.size() && uid >= 0) {
    out.mutable_uid()->set_value(uid);
  } else {
    out.set_username(std::string(name));
  }
}

void to_cri_image(const storage::Image& image, v1::Image& out) {
  out.set_id(image.id);
  for (const auto& tag : image.repo_tags) out.add_repo_tags(tag);
  for (const auto& digest : image.repo_digests) out.add_repo_digests(digest);
  out.set_size(image.size > 0 ? static_cast<uint64_t>(image.size) : 0);
  fill_image_user(image.config.defaults.user, out);
  out.mutable_spec()->set_image(image.id);
  out.set_pinned(false);
}

std::string image_info_json(const storage::Image& image) {
  const auto& c = image.config;
  std::vector<std::string> diff_ids;
  for (const auto& d : c.diff_ids) diff_ids.push_back(d.str());
  nlohmann::json info = {
      {"id", image.id},
      {"chainID", image.chain_id},
      {"manifestDigest", image.manifest_digest},
      {"manifestMediaType", image.manifest_media_type},
      {"size", image.size},
      {"imageSpec",
       {{"created", c.created},
        {"author", c.author},
        {"architecture", c.architecture},
        {"variant", c.variant},
        {"os", c.os},
        {"config",
         {{"User", c.defaults.user},
          {"ExposedPorts", c.defaults.exposed_ports},
          {"Env", c.defaults.env},
          {"Entrypoint", c.defaults.entrypoint},
          {"Cmd", c.defaults.cmd},
          {"Volumes", c.defaults.volumes},
          {"WorkingDir", c.defaults.working_dir},
          {"Labels", c.defaults.labels},
          {"StopSignal", c.defaults.stop_signal}}},
        {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}}},
  };
  return info.dump();
}

ImageService::ImageService(storage::ImageStore& store, Options options) : store_(store), options_(options) {}

grpc::CallStatus ImageService::gather(const v1::ImageFilter* filter, std::vector<v1::Image>& out) {
  // A filter naming an image selects that one image, by any of its names or its ID.
  if (filter && !filter->image().image().empty()) {
    auto image = store_.get(filter->image().image());
    if (!image) {
      if (image.error().code == ENOENT) return {};
      return failed(image.error(), "list images");
    }
    to_cri_image(*image, out.emplace_back());
    return {};
  }
  auto images = store_.list();
  if (!images) return failed(images.error(), "list images");
  for (const auto& image : *images) to_cri_image(image, out.emplace_back());
  return {};
}

grpc::CallStatus ImageService::list_images(Ctx&, const v1::ListImagesRequest& req, v1::ListImagesResponse& resp) {
  std::vector<v1::Image> images;
  auto status = gather(req.has_filter() ? &req.filter() : nullptr, images);
  if (!status.ok()) return status;
  for (auto& image : images) *resp.add_images() = std::move(image);
  return {};
}

grpc::CallStatus ImageService::stream_images(Ctx& ctx, const v1::StreamImagesRequest& req,
                                             grpc::StreamWriter<v1::StreamImagesResponse>& writer) {
  std::vector<v1::Image> images;
  auto status = gather(req.has_filter() ? &req.filter() : nullptr, images);
  if (!status.ok()) return status;
  return send_in_batches(ctx, writer, std::move(images), &v1::StreamImagesResponse::mutable_images,
                         options_.stream_batch_items, options_.stream_batch_bytes);
}

grpc::CallStatus ImageService::image_status(Ctx&, const v1::ImageStatusRequest& req, v1::ImageStatusResponse& resp) {
  const std::string& name = req.image().image();
  if (name.empty()) return {StatusCode::invalid_argument, "image.image is required"};
  auto image = store_.get(name);
  if (!image) {
    // Not present is an answer, not an error: kubelet pulls on an empty reply.
    if (image.error().code == ENOENT) return {};
    return failed(image.error(), "image status of " + name);
  }
  to_cri_image(*image, *resp.mutable_image());
  if (req.verbose()) (*resp.mutable_info())["info"] = image_info_json(*image);
  return {};
}

grpc::CallStatus ImageService::pull_image(Ctx&, const v1::PullImageRequest& req, v1::PullImageResponse& resp) {
  const std::string& name = req.image().image();
  if (name.empty()) return {StatusCode::invalid_argument, "image.image is required"};
  auto creds = to_registry_credentials(req.auth(), name);
  if (!creds) return failed(creds.error(), "pull image " + name);
  auto image = store_.pull(name, *creds);
  if (!image) return failed(image.error(), "pull image " + name);
  resp.set_image_ref(image->id);
  return {};
}

grpc::CallStatus ImageService::remove_image(Ctx&, const v1::RemoveImageRequest& req, v1::RemoveImageResponse&) {
  const std::string& name = req.image().image();
  if (name.empty()) return {StatusCode::invalid_argument, "image.image is required"};
  auto image = store_.get(name);
  if (!image) {
    if (image.error().code == ENOENT) return {};
    return failed(image.error(), "remove image " + name);
  }
  // By ID, so every name of the image goes with it.
  auto removed = store_.remove(image->id);
  if (!removed && removed.error().code != ENOENT) return failed(removed.error(), "remove image " + name);
  return {};
}

grpc::CallStatus ImageService::image_fs_info(Ctx&, const v1::ImageFsInfoRequest&, v1::ImageFsInfoResponse& resp) {
  auto usage = store_.usage();
  if (!usage) return failed(usage.error(), "image filesystem usage");
  v1::FilesystemUsage fs;
  fs.set_timestamp(now_ns());
  fs.mutable_fs_id()->set_mountpoint(usage->mountpoint);
  fs.mutable_used_bytes()->set_value(static_cast<uint64_t>(std::max<int64_t>(usage->bytes(), 0)));
  fs.mutable_inodes_used()->set_value(static_cast<uint64_t>(std::max<int64_t>(usage->inodes(), 0)));
  // Containers' writable layers live in the same snapshot store: one filesystem
  // serves both, which is how kubelet learns that images and containers share it.
  *resp.add_image_filesystems() = fs;
  *resp.add_container_filesystems() = fs;
  return {};
}

void ImageService::register_with(grpc::GrpcServer& server) {
  const std::string prefix = "/runtime.v1.ImageService/";
  server.unary<v1::ListImagesRequest, v1::ListImagesResponse>(
      prefix + "ListImages", [this](Ctx& c, const auto& req, auto& resp) { return list_images(c, req, resp); });
  server.server_stream<v1::StreamImagesRequest, v1::StreamImagesResponse>(
      prefix + "StreamImages", [this](Ctx& c, const auto& req, auto& w) { return stream_images(c, req, w); });
  server.unary<v1::ImageStatusRequest, v1::ImageStatusResponse>(
      prefix + "ImageStatus", [this](Ctx& c, const auto& req, auto& resp) { return image_status(c, req, resp); });
  server.unary<v1::PullImageRequest, v1::PullImageResponse>(
      prefix + "PullImage", [this](Ctx& c, const auto& req, auto& resp) { return pull_image(c, req, resp); });
  server.unary<v1::RemoveImageRequest, v1::RemoveImageResponse>(
      prefix + "RemoveImage", [this](Ctx& c, const auto& req, auto& resp) { return remove_image(c, req, resp); });
  server.unary<v1::ImageFsInfoRequest, v1::ImageFsInfoResponse>(
      prefix + "ImageFsInfo", [this](Ctx& c, const auto& req, auto& resp) { return image_fs_info(c, req, resp); });
}

}  // namespace berth::cri
