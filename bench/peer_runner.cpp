// The peer runner (see peer_runner.h).
#include "bench/peer_runner.h"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "src/error.h"
#include "src/files.h"
#include "src/logging.h"

#ifndef R1KIT_BENCH_SOURCE_DIR
#define R1KIT_BENCH_SOURCE_DIR "."
#endif

namespace r1kit::bench {
namespace {

// "exit 1", "signal 9 (Killed)": how the shell that ran the peer ended.
std::string describe_status(int status) {
  if (status == -1) return "pclose failed";
  if (WIFEXITED(status)) return fmt::format("exit {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("signal {}", WTERMSIG(status));
  return fmt::format("status {}", status);
}

// The last non-blank line of `path` (cut to 300 characters), or "" when there is none.
std::string last_line_of(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line)) {
    const size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos) continue;
    last = line.substr(b, line.find_last_not_of(" \t\r") + 1 - b);
  }
  if (last.size() > 300) last = last.substr(0, 300) + "...";
  return last;
}

}  // namespace

const std::string& source_root() {
  static const std::string root = [] {
    const char* env = std::getenv("R1KIT_ROOT");
    return std::string(env != nullptr && *env != '\0' ? env : R1KIT_BENCH_SOURCE_DIR);
  }();
  return root;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

Json run_peer(const PeerCommand& peer) {
  const std::string& root = source_root();
  const std::string python = root + "/.venv/bin/python";
  const std::string script = root + "/" + peer.script;
  if (::access(python.c_str(), X_OK) != 0) {
    throw Error(fmt::format("peer {}: no {} (run scripts/setup, or set R1KIT_ROOT to the r1kit checkout)", peer.script,
                            python));
  }
  if (::access(script.c_str(), R_OK) != 0) {
    throw Error(fmt::format("peer {}: {} not found (set R1KIT_ROOT to the r1kit checkout)", peer.script, script));
  }
  const ScratchDir scratch("peer");
  const std::string err_file = scratch.path() + "/stderr.txt";
  std::string cmd;
  for (const auto& [name, value] : peer.env) cmd += name + "=" + shell_quote(value) + " ";
  cmd += shell_quote(python) + " " + shell_quote(script);
  for (const std::string& arg : peer.args) cmd += " " + shell_quote(arg);
  cmd += " 2>" + shell_quote(err_file);

  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) throw Error(fmt::format("peer {}: cannot start {}", peer.script, python));
  std::string out;
  char buf[4096];
  while (size_t got = std::fread(buf, 1, sizeof(buf), pipe)) out.append(buf, got);
  const int status = ::pclose(pipe);

  Json result;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    const size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] != '{') continue;
    Json j = Json::parse(line, /*cb=*/nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) result = std::move(j);
  }
  if (status != 0 || result.is_null()) {
    const std::string why =
        status != 0 ? "failed (" + describe_status(status) + ")" : "printed no JSON object line on stdout";
    const std::string err = last_line_of(err_file);
    throw Error(fmt::format("peer {} {}{}{}", peer.script, why, err.empty() ? "" : ": ", err));
  }
  return result;
}

ScratchDir::ScratchDir(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/r1kit_" + name + "_XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw Error("cannot create a temporary directory " + tmpl);
  path_ = tmpl;
}

ScratchDir::~ScratchDir() {
  try {
    remove_tree(path_);
  } catch (const Error& e) {  // a leftover temporary directory is not worth failing a bench for
    log::warn("{}", e.what());
  }
}

}  // namespace r1kit::bench
