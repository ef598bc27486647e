#include "storage/image_records.h"

#include <ctime>

namespace berth::storage {

namespace {

constexpr int kSchemaVersion = 1;
constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS images (
  id TEXT PRIMARY KEY,
  manifest_digest TEXT NOT NULL,
  manifest_media_type TEXT NOT NULL,
  chain_id TEXT NOT NULL,
  size INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS image_names (
  name TEXT PRIMARY KEY,
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS image_names_image ON image_names(image_id);
CREATE TABLE IF NOT EXISTS image_blobs (
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  digest TEXT NOT NULL,
  PRIMARY KEY (image_id, digest)
);
)sql";

constexpr std::string_view kSelect =
    "SELECT id, manifest_digest, manifest_media_type, chain_id, size, created_at FROM images";

}  // namespace

Result<ImageRecords> ImageRecords::open(std::shared_ptr<Database> db) {
  BERTH_TRY_VOID(db->ensure_schema("images", kSchemaVersion, kSchema));
  return ImageRecords(std::move(db));
}

Result<ImageRecord> ImageRecords::load(Statement& row) {
  ImageRecord r;
  r.id = row.text(0);
  r.manifest_digest = row.text(1);
  r.manifest_media_type = row.text(2);
  r.chain_id = row.text(3);
  r.size = row.integer(4);
  r.created_at = row.integer(5);
  auto names = BERTH_TRY(db_->prepare("SELECT name FROM image_names WHERE image_id = ? ORDER BY name"));
  names.bind(1, r.id);
  while (BERTH_TRY(names.step())) r.names.push_back(names.text(0));
  auto blobs = BERTH_TRY(db_->prepare("SELECT digest FROM image_blobs WHERE image_id = ? ORDER BY digest"));
  blobs.bind(1, r.id);
  while (BERTH_TRY(blobs.step())) r.blobs.push_back(blobs.text(0));
  return r;
}

Result<> ImageRecords::put(const ImageRecord& record) {
  return db_->transaction([&]() -> Result<> {
    auto up = BERTH_TRY(db_->prepare(
        "INSERT INTO images (id, manifest_digest, manifest_media_type, chain_id, size, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET manifest_digest = excluded.manifest_digest, "
        "manifest_media_type = excluded.manifest_media_type, chain_id = excluded.chain_id, size = excluded.size"));
    up.bind(1, record.id).bind(2, record.manifest_digest).bind(3, record.manifest_media_type).bind(4, record.chain_id);
    up.bind(5, record.size).bind(6, record.created_at ? record.created_at : static_cast<int64_t>(::time(nullptr)));
    BERTH_TRY_VOID(up.run());
    for (auto& name : record.names) {
      auto n = BERTH_TRY(db_->prepare(
          "INSERT INTO image_names (name, image_id) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id"));
      n.bind(1, name).bind(2, record.id);
      BERTH_TRY_VOID(n.run());
    }
    for (auto& blob : record.blobs) {
      auto b = BERTH_TRY(db_->prepare("INSERT OR IGNORE INTO image_blobs (image_id, digest) VALUES (?, ?)"));
      b.bind(1, record.id).bind(2, blob);
      BERTH_TRY_VOID(b.run());
    }
    return {};
  });
}

Result<std::optional<ImageRecord>> ImageRecords::get(const std::string& id) {
  auto guard = db_->lock();
  auto q = BERTH_TRY(db_->prepare(std::string(kSelect) + " WHERE id = ?"));
  q.bind(1, id);
  if (!BERTH_TRY(q.step())) return std::nullopt;
  return BERTH_TRY(load(q));
}

Result<std::optional<ImageRecord>> ImageRecords::by_name(const std::string& name) {
  auto guard = db_->lock();
  auto q = BERTH_TRY(db_->prepare("SELECT image_id FROM image_names WHERE name = ?"));
  q.bind(1, name);
  if (!BERTH_TRY(q.step())) return std::nullopt;
  return get(q.text(0));
}

Result<std::vector<std::string>> ImageRecords::ids_with_prefix(const std::string& prefix) {
  std::vector<std::string> out;
  auto q = BERTH_TRY(db_->prepare("SELECT id FROM images WHERE substr(id, 8, ?) = ?"));
  q.bind(1, static_cast<int64_t>(prefix.size())).bind(2, prefix);
  while (BERTH_TRY(q.step())) out.push_back(q.text(0));
  return out;
}

Result<std::vector<ImageRecord>> ImageRecords::list() {
  auto guard = db_->lock();
  std::vector<ImageRecord> out;
  auto q = BERTH_TRY(db_->prepare(std::string(kSelect) + " ORDER BY created_at, id"));
  while (BERTH_TRY(q.step())) out.push_back(BERTH_TRY(load(q)));
  return out;
}

Result<bool> ImageRecords::remove_name(const std::string& name) {
  bool orphaned = false;
  BERTH_TRY_VOID(db_->transaction([&]() -> Result<> {
    auto q = BERTH_TRY(db_->prepare("SELECT image_id FROM image_names WHERE name = ?"));
    q.bind(1, name);
    if (!BERTH_TRY(q.step())) return fail(ENOENT, "image " + name + " not found");
    std::string id = q.text(0);
    auto del = BERTH_TRY(db_->prepare("DELETE FROM image_names WHERE name = ?"));
    del.bind(1, name);
    BERTH_TRY_VOID(del.run());
    auto left = BERTH_TRY(db_->prepare("SELECT count(*) FROM image_names WHERE image_id = ? AND instr(name, '@') = 0"));
    left.bind(1, id);
    BERTH_TRY_VOID(left.step());
    orphaned = left.integer(0) == 0;
    return {};
  }));
  return orphaned;
}

Result<> ImageRecords::remove_image(const std::string& id) {
  auto del = BERTH_TRY(db_->prepare("DELETE FROM images WHERE id = ?"));
  del.bind(1, id);
  return del.run();
}

Result<std::vector<std::string>> ImageRecords::unnamed() {
  std::vector<std::string> out;
  auto q = BERTH_TRY(db_->prepare("SELECT id FROM images WHERE id NOT IN (SELECT image_id FROM image_names)"));
  while (BERTH_TRY(q.step())) out.push_back(q.text(0));
  return out;
}

Result<std::vector<std::string>> ImageRecords::live_blobs() {
  std::vector<std::string> out;
  auto q = BERTH_TRY(db_->prepare("SELECT DISTINCT digest FROM image_blobs"));
  while (BERTH_TRY(q.step())) out.push_back(q.text(0));
  return out;
}

Result<std::vector<std::string>> ImageRecords::live_chains() {
  std::vector<std::string> out;
  auto q = BERTH_TRY(db_->prepare("SELECT DISTINCT chain_id FROM images WHERE chain_id != ''"));
  while (BERTH_TRY(q.step())) out.push_back(q.text(0));
  return out;
}

}  // namespace berth::storage
