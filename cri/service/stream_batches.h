// The Stream* list calls of CRI 1.36: the same items as the List* reply, cut into
// messages of at least one item each, no item twice, then the end of the stream.
#pragma once

#include <google/protobuf/repeated_ptr_field.h>

#include <cstddef>
#include <vector>

#include "cri/grpc/call_context.h"
#include "cri/grpc/status.h"
#include "cri/grpc/stream_writer.h"

namespace berth::cri {

// `field` is the response's mutable_<items>() accessor. A message goes out when it
// holds `max_items` items or about `max_bytes` of them.
template <class Resp, class Item>
grpc::CallStatus send_in_batches(grpc::CallContext& ctx, grpc::StreamWriter<Resp>& writer, std::vector<Item> items,
                                 google::protobuf::RepeatedPtrField<Item>* (Resp::*field)(), size_t max_items,
                                 size_t max_bytes) {
  Resp batch;
  size_t bytes = 0;
  auto flush = [&] {
    if ((batch.*field)()->empty()) return true;
    bool sent = writer.write(batch);
    batch.Clear();
    bytes = 0;
    return sent;
  };
  const grpc::CallStatus gone{grpc::StatusCode::cancelled, "the client went away"};
  for (auto& item : items) {
    if (ctx.cancelled()) return gone;
    bytes += item.ByteSizeLong();
    *(batch.*field)()->Add() = std::move(item);
    bool full = static_cast<size_t>((batch.*field)()->size()) >= max_items || bytes >= max_bytes;
    if (full && !flush()) return gone;
  }
  if (!flush()) return gone;
  return {};
}

}  // namespace berth::cri
