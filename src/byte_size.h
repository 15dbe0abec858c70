// Byte sizes as users write and read them: "16GiB", "512M", "1.5 GB", "1048576" (plain bytes);
// K/M/G/T and their KiB/MiB/GiB/TiB spellings are all powers of 1024, as memory is counted.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace r1kit {

// Throws r1kit::Error naming `where` ("--max-memory") for anything else or a size <= 0.
int64_t parse_byte_size(std::string_view text, const std::string& where);
// "1.5 GiB", "640.0 MiB", "12 B".
std::string format_bytes(double bytes);

}  // namespace r1kit
