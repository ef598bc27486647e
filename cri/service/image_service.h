// runtime.v1.ImageService over berth's image store. As containerd does it:
// PullImage answers with the image ID, which is also Image.id and what containers
// report as image_id; ImageStatus of an unknown image is an empty, successful
// reply; RemoveImage of an unknown image succeeds, and removing by one name removes
// the image with all its names (CRI's rule since 1.36).
#pragma once

#include "cri/proto/runtime_api.h"

#include <cstddef>
#include <string>

#include "cri/grpc/call_context.h"
#include "cri/grpc/status.h"
#include "cri/grpc/stream_writer.h"

namespace berth::storage {
class ImageStore;
struct Image;
}

namespace berth::grpc {
class GrpcServer;
}

namespace berth::cri {

namespace v1 = ::runtime::v1;

// Image.uid / Image.username from an image config User ("1000", "app:app", "0:0").
void fill_image_user(const std::string& user, v1::Image& out);
void to_cri_image(const storage::Image& image, v1::Image& out);
// The verbose ImageStatus "info": ID, chain ID, manifest and the config's defaults.
std::string image_info_json(const storage::Image& image);

class ImageService {
 public:
  struct Options {
    size_t stream_batch_items = 500;
    size_t stream_batch_bytes = 2u << 20;
  };

  explicit ImageService(storage::ImageStore& store) : ImageService(store, Options()) {}
  ImageService(storage::ImageStore& store, Options options);

  void register_with(grpc::GrpcServer& server);

  using Ctx = grpc::CallContext;
  using Status = grpc::CallStatus;

  Status list_images(Ctx&, const v1::ListImagesRequest&, v1::ListImagesResponse&);
  Status stream_images(Ctx&, const v1::StreamImagesRequest&, grpc::StreamWriter<v1::StreamImagesResponse>&);
  Status image_status(Ctx&, const v1::ImageStatusRequest&, v1::ImageStatusResponse&);
  Status pull_image(Ctx&, const v1::PullImageRequest&, v1::PullImageResponse&);
  Status remove_image(Ctx&, const v1::RemoveImageRequest&, v1::RemoveImageResponse&);
  Status image_fs_info(Ctx&, const v1::ImageFsInfoRequest&, v1::ImageFsInfoResponse&);

 private:
  Status gather(const v1::ImageFilter* filter, std::vector<v1::Image>& out);

  storage::ImageStore& store_;
  Options options_;
};

}  // namespace berth::cri
