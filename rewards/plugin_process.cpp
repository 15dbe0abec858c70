// External-process rewards over JSON lines (see plugin_process.h).
#include "rewards/plugin_process.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>

#include "src/error.h"

namespace r1kit::rewards {
namespace {

struct Timeout {};

class ProcessReward : public Reward {
 public:
  ProcessReward(std::vector<std::string> command, bool batch)
      : command_(std::move(command)), batch_(batch), label_(fmt::format("{}", fmt::join(command_, " "))) {
    if (command_.size() == 3 && command_[0] == "/bin/sh" && command_[1] == "-c") label_ = command_[2];
  }
  ~ProcessReward() override { stop(); }

  RewardResult score(const RewardInput& in) const override {
    std::lock_guard<std::mutex> lock(mu_);
    try {
      Json reply = call(request_of(in), timeout_s());
      return result_of(reply);
    } catch (const Timeout&) {
      return RewardResult::timeout(fmt::format("timeout after {}s", timeout_s()));
    }
  }

  std::vector<RewardResult> score_batch(const std::vector<RewardInput>& batch, ThreadPool* pool) const override {
    if (!batch_) return Reward::score_batch(batch, pool);
    std::lock_guard<std::mutex> lock(mu_);
    Json req = {{"batch", Json::array()}};
    for (const auto& in : batch) req["batch"].push_back(request_of(in));
    std::vector<RewardResult> out;
    try {
      Json reply = call(req, timeout_s() * std::max<size_t>(1, batch.size()));
      const Json* results = reply.contains("results") ? &reply["results"] : nullptr;
      if (results == nullptr || !results->is_array() || results->size() != batch.size())
        throw Error(
            fmt::format("process reward '{}': batch reply needs \"results\" with {} entries", label_, batch.size()));
      for (const auto& r : *results) out.push_back(result_of(r));
    } catch (const Timeout&) {
      out.assign(batch.size(), RewardResult::timeout(fmt::format("timeout after {}s", timeout_s() * batch.size())));
    }
    return out;
  }

 private:
  static Json request_of(const RewardInput& in) {
    return {{"prompt", std::string(in.prompt)},
            {"completion", std::string(in.completion)},
            {"fields", in.fields ? *in.fields : Json::object()}};
  }
  RewardResult result_of(const Json& r) const {
    if (!r.is_object())
      throw Error(fmt::format("process reward '{}': reply is not a JSON object: {}", label_, r.dump().substr(0, 120)));
    if (r.contains("error") && r["error"].is_string()) return RewardResult::error(r["error"].get<std::string>());
    RewardResult out;
    if (r.contains("value") && r["value"].is_number())
      out.value = r["value"].get<double>();
    else if (r.contains("value") && !r["value"].is_null())
      throw Error(fmt::format("process reward '{}': \"value\" must be a number or null", label_));
    if (r.contains("why") && r["why"].is_string()) out.why = r["why"].get<std::string>();
    if (r.contains("parts") && r["parts"].is_object())
      for (const auto& [k, v] : r["parts"].items())
        if (v.is_number()) out.parts[k] = v.get<double>();
    return out;
  }

  void start() const {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      throw Error(fmt::format("process reward '{}': socketpair failed: {}", label_, std::strerror(errno)));
    std::vector<std::string> argv = command_;
    std::vector<char*> cargv;
    for (auto& s : argv) cargv.push_back(s.data());
    cargv.push_back(nullptr);
    pid_t pid = fork();
    if (pid < 0) throw Error(fmt::format("process reward '{}': fork failed", label_));
    if (pid == 0) {
      dup2(sv[1], 0);
      dup2(sv[1], 1);
      setpgid(0, 0);
      execvp(cargv[0], cargv.data());
      const char msg[] = "r1kit: process reward: exec failed\n";
      (void)!write(2, msg, sizeof(msg) - 1);
      _exit(127);
    }
    close(sv[1]);
    fd_ = sv[0];
    pid_ = pid;
    buffer_.clear();
  }

  void stop() const {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    if (pid_ > 0) {
      kill(-pid_, SIGKILL);
      kill(pid_, SIGKILL);
      int status;
      waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }

  [[noreturn]] void died(const std::string& what) const {
    int status = 0;
    std::string how = "is still running";
    pid_t w = 0;
    for (int i = 0; i < 100 && pid_ > 0 && (w = waitpid(pid_, &status, WNOHANG)) == 0; ++i) usleep(10000);
    if (pid_ > 0 && w == pid_) {
      how = WIFEXITED(status) ? fmt::format("exited with status {}", WEXITSTATUS(status))
                              : fmt::format("was killed by signal {}", WTERMSIG(status));
      pid_ = -1;
    }
    stop();
    throw Error(fmt::format("process reward '{}': {} (the process {}; see its stderr above)", label_, what, how));
  }

  Json call(const Json& request, double timeout) const {
    if (pid_ < 0) start();
    std::string line = request.dump() + "\n";
    size_t sent = 0;
    while (sent < line.size()) {
      ssize_t w = send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) died("cannot write the request");
      sent += static_cast<size_t>(w);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                           std::chrono::duration<double>(timeout));
    char buf[65536];
    while (true) {
      size_t eol = buffer_.find('\n');
      if (eol != std::string::npos) {
        std::string reply = buffer_.substr(0, eol);
        buffer_.erase(0, eol + 1);
        try {
          return Json::parse(reply);
        } catch (const std::exception&) {
          died(fmt::format("reply is not JSON: '{}'", reply.substr(0, 120)));
        }
      }
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) {
        stop();  // restarted on the next call
        throw Timeout{};
      }
      pollfd p{fd_, POLLIN, 0};
      int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count()) + 1;
      int rc = poll(&p, 1, ms);
      if (rc < 0 && errno != EINTR) died("poll failed");
      if (rc <= 0) continue;
      ssize_t got = recv(fd_, buf, sizeof(buf), 0);
      if (got <= 0) died("no reply");
      buffer_.append(buf, static_cast<size_t>(got));
    }
  }

  std::vector<std::string> command_;
  bool batch_;
  std::string label_;
  mutable std::mutex mu_;
  mutable pid_t pid_ = -1;
  mutable int fd_ = -1;
  mutable std::string buffer_;
};

std::unique_ptr<Reward> make_process(JsonFields& f) {
  const Json* cmd = f.raw("command");
  std::vector<std::string> command;
  if (cmd != nullptr && cmd->is_string()) {
    command = {"/bin/sh", "-c", cmd->get<std::string>()};
  } else {
    f.require("command", command);
  }
  if (command.empty()) f.fail("command", "must not be empty");
  bool batch = false;
  f.get("batch", batch);
  return make_process_reward(command, batch, 30.0);
}

}  // namespace

std::unique_ptr<Reward> make_process_reward(std::vector<std::string> command, bool batch, double timeout_s) {
  auto r = std::make_unique<ProcessReward>(std::move(command), batch);
  r->set_timeout_s(timeout_s);
  return r;
}

R1KIT_REGISTER_REWARD(process, make_process);

}  // namespace r1kit::rewards
