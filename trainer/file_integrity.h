// Durable files: fsync of a file or directory, and CRC-32 checksums of file contents. A write is
// durable once its file and then its directory are fsynced; a checksum tells a complete file from
// a truncated or corrupted one.
#pragma once

#include <cstdint>
#include <string>

namespace lorascope {

// fsync(2) of a file or directory; throws naming the path when it cannot be opened or synced.
void fsync_path(const std::string& path);

// CRC-32 (IEEE 802.3, as zlib.crc32 and gzip) of data, continuing from crc.
uint32_t crc32_update(uint32_t crc, const void* data, size_t size);
// CRC-32 of a whole file; bytes (if given) gets its size. Throws naming the path.
uint32_t file_crc32(const std::string& path, uint64_t* bytes = nullptr);

}  // namespace lorascope
