// How a benchmark runs its Python peer (bench/peers/*.py), the one copy: the checkout's
// .venv/bin/python on the script, every argument shell-quoted, stdout captured and stderr
// kept aside for the error message. The peer's result is the LAST stdout line that parses as
// a JSON object: libraries print their own lines first (TRL's Trainer prints Python dicts,
// which start with '{' but are not JSON). Also the scratch directory a bench and its peer
// share. Torch-free. Not here: timeouts (a peer that hangs hangs the bench).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "src/config.h"

namespace r1kit::bench {

// The r1kit checkout that holds bench/peers/, .venv and ../shared/data: $R1KIT_ROOT when set,
// else the source directory the benches were built from. Resolved once, on first use.
const std::string& source_root();

struct PeerCommand {
  std::string script;                                    // relative to the checkout: "bench/peers/trl_grpo.py"
  std::vector<std::string> args;                         // one argv entry each
  std::vector<std::pair<std::string, std::string>> env;  // NAME, value: set for the peer only
};

// Runs the peer from the current directory and returns its last JSON-object line of stdout.
// Throws r1kit::Error, one line naming the script, when it cannot start, fails or prints no
// JSON object; the message ends with the last line the peer wrote to stderr (for Python,
// the exception).
Json run_peer(const PeerCommand& peer);

// For sh -c: 'text', each ' inside written as '\''.
std::string shell_quote(const std::string& s);

// A fresh directory $TMPDIR/r1kit_<name>_XXXXXX, removed with everything in it when this goes
// out of scope (also when a bench throws).
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace r1kit::bench
