// Directory helpers on POSIX calls, for code that ends up in LibTorch-linked binaries.
//
// Why not std::filesystem: the torch 2.11 wheel's libtorch.so exports its own statically
// linked copy of libstdc++'s filesystem (remove_all, directory iteration, ...), and in a
// binary built with g++ 12 those symbols bind to libtorch's copy, which crashes
// (remove_all jumps to a null pointer). path arithmetic and create_directories are fine;
// removing trees and listing directories go through these functions instead.
#pragma once
#include <string>
#include <vector>

namespace r1kit {

// rm -rf: removes `path` and everything under it; a missing path is not an error.
// Throws r1kit::Error naming the first entry it could not remove.
void remove_tree(const std::string& path);
// Names (not paths) of the entries of `dir`, sorted, without "." and "..".
std::vector<std::string> list_dir(const std::string& dir);
// Paths relative to `dir` of every regular file below it, sorted ("a.json", "sub/b.bin").
std::vector<std::string> list_files_recursive(const std::string& dir);
// "fnv1a64:<16 hex digits>" of a file's bytes: detects a truncated or damaged file (not an
// adversary). Throws r1kit::Error naming the file when it cannot be read.
std::string file_checksum(const std::string& path);
// A whole file's bytes. Throws r1kit::Error "PATH: cannot open file" when it cannot be read.
std::string read_text_file(const std::string& path);
// The running program's path (/proc/self/exe); "" when it cannot be read.
std::string executable_path();

}  // namespace r1kit
