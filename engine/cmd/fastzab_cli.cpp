// fastzab-cli: a client of one server's client port (engine/runtime/client_protocol.h).
//
//   fastzab-cli --server HOST:PORT [--timeout MS] status      the server's status, as JSON
//   fastzab-cli --server HOST:PORT [--timeout MS] put VALUE   a write; prints its commit zxid
//   fastzab-cli --server HOST:PORT [--timeout MS] put --file PATH
//                                  the same with the value read from a file (- : standard input)
//   ... put [--client-id N [--seq S]] ...
//                                  the write's id (default: a random client id, seq 1)
//   fastzab-cli --server HOST:PORT [--timeout MS] transfer [--to ID]
//                                  hand leadership (group 0) from that server, its leader, to ID
//                                  (default: the server's choice); prints the new leader's id
//
// One request per run, with plain POSIX sockets: this is a tool for people and scripts, not the
// hot path. The whole exchange (resolve, connect, send, reply) must finish within --timeout.
// A put is a write_once: when its outcome is unknown (an unknown_outcome reply, or the
// connection lost after the request went out) it is sent again with the same id, on a new
// connection, up to kPutAttempts times in all within --timeout (also while a retry is answered
// "nothing proposed": no_leader, unavailable, rejected, which say nothing of the first attempt);
// the server answers a retry of a write that committed with its original zxid, so the value is
// applied at most once.
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <expected>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "engine/runtime/client_protocol.h"

namespace {

namespace client = fastzab::runtime::client;
using Clock = std::chrono::steady_clock;

constexpr int kExitGood = 0;
constexpr int kExitServerError = 1;  // the server answered with an error reply
constexpr int kExitUsage = 2;        // a bad command line
constexpr int kExitNoAnswer = 3;     // cannot connect, closed, timed out, or a garbage reply

constexpr std::uint64_t kRequestId = 1;

// A put's attempts when its outcome is unknown, and the pause before the first retry (doubled
// before each next one: 0.2 + 0.4 + 0.8 + 1.6 s, time for an election).
constexpr int kPutAttempts = 5;
constexpr auto kFirstRetryPause = std::chrono::milliseconds(200);

constexpr const char* kExitHelp =
    "Exit status: 0 success; 1 the server answered with an error (printed as\n"
    "'fastzab-cli: <code>: <text>'; e.g. no_leader or unavailable: not written, retry;\n"
    "unknown_outcome: the write may have committed (put sends it again with the same id, up\n"
    "to 5 attempts 0.2 s, 0.4 s, 0.8 s, 1.6 s apart within --timeout, also while a retry is\n"
    "answered no_leader/unavailable/rejected; then put the same value with the --client-id\n"
    "and --seq it printed to learn its zxid: it is applied at most once); stale_sequence: --seq\n"
    "is older than that client id's last write); 2 a bad command line; 3 no usable answer:\n"
    "cannot resolve or connect, the connection closed, the timeout passed, or the reply was\n"
    "not the protocol.";

struct Endpoint {
  std::string host;
  std::string port;
  std::string text;  // as given, for messages
};

// HOST:PORT, or [IPV6]:PORT.
std::optional<Endpoint> parse_endpoint(const std::string& s) {
  std::string host;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return std::nullopt;
    }
    host = s.substr(1, close - 1);
    port = std::string_view(s).substr(close + 2);
  } else {
    const auto colon = s.rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    host = s.substr(0, colon);
    port = std::string_view(s).substr(colon + 1);
    if (host.find(':') != std::string::npos) return std::nullopt;  // IPv6 needs brackets
  }
  if (host.empty() || port.empty()) return std::nullopt;
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || end != port.data() + port.size() || value < 1 || value > 65535) {
    return std::nullopt;
  }
  return Endpoint{host, std::string(port), s};
}

// A failure to get an answer: the line for stderr, without the program name.
struct NoAnswer {
  std::string what;
  bool garbage = false;  // the server answered, but not in the protocol: no point retrying
};

class Connection {
 public:
  Connection(const Endpoint& ep, Clock::time_point deadline, int timeout_ms)
      : ep_(ep), deadline_(deadline), timeout_ms_(timeout_ms) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }

  std::expected<void, NoAnswer> connect() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* list = nullptr;
    const int rc = ::getaddrinfo(ep_.host.c_str(), ep_.port.c_str(), &hints, &list);
    if (rc != 0) return fail(std::string("cannot resolve: ") + ::gai_strerror(rc));
    std::string last_error = "no address";
    for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
      const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                              ai->ai_protocol);
      if (fd < 0) {
        last_error = std::strerror(errno);
        continue;
      }
      auto connected = connect_one(fd, ai);
      if (connected) {
        fd_ = fd;
        ::freeaddrinfo(list);
        return {};
      }
      ::close(fd);
      last_error = connected.error();
      if (Clock::now() >= deadline_) break;
    }
    ::freeaddrinfo(list);
    return fail("cannot connect: " + last_error);
  }

  std::expected<void, NoAnswer> send_all(std::span<const std::byte> data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data = data.subspan(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (auto w = wait(POLLOUT); !w) return w;
        continue;
      }
      return fail(std::string("cannot send the request: ") + std::strerror(errno));
    }
    return {};
  }

  // Reads until one whole frame is in; decodes it into `m` (its body views into this object).
  std::expected<void, NoAnswer> receive(client::Message& m) {
    for (;;) {
      std::size_t consumed = 0;
      switch (client::decode(buffer_, m, consumed)) {
        case client::Decoded::message: return {};
        case client::Decoded::bad:
        case client::Decoded::too_large: {
          auto garbage = fail("garbage reply: not the fastzab client protocol");
          garbage.error().garbage = true;
          return garbage;
        }
        case client::Decoded::need_more: break;
      }
      std::byte chunk[16 * 1024];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n > 0) {
        buffer_.insert(buffer_.end(), chunk, chunk + n);
        continue;
      }
      if (n == 0) return fail("the server closed the connection before replying");
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (auto w = wait(POLLIN); !w) return w;
        continue;
      }
      return fail(std::string("cannot read the reply: ") + std::strerror(errno));
    }
  }

 private:
  std::unexpected<NoAnswer> fail(std::string what) const {
    return std::unexpected(NoAnswer{ep_.text + ": " + std::move(what)});
  }

  int remaining_ms() const {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
    if (left <= 0) return 0;
    return left > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(left);
  }

  std::expected<void, NoAnswer> wait(short events) {
    for (;;) {
      const int left = remaining_ms();
      if (left == 0) return fail("no reply within " + std::to_string(timeout_ms_) + " ms");
      pollfd p{fd_, events, 0};
      const int rc = ::poll(&p, 1, left);
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0) return fail(std::string("poll: ") + std::strerror(errno));
      if (rc > 0) return {};  // ready, or an error the next call reports
    }
  }

  std::expected<void, std::string> connect_one(int fd, const addrinfo* ai) {
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) return {};
    if (errno != EINPROGRESS && errno != EINTR) return std::unexpected(std::strerror(errno));
    for (;;) {
      const int left = remaining_ms();
      if (left == 0) {
        return std::unexpected("not connected within " + std::to_string(timeout_ms_) + " ms");
      }
      pollfd p{fd, POLLOUT, 0};
      const int rc = ::poll(&p, 1, left);
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0) return std::unexpected(std::string("poll: ") + std::strerror(errno));
      if (rc == 0) continue;
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err != 0) return std::unexpected(std::strerror(err));
      return {};
    }
  }

  Endpoint ep_;
  Clock::time_point deadline_;
  int timeout_ms_;
  int fd_ = -1;
  std::vector<std::byte> buffer_;
};

std::string_view as_text(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

int no_answer(const NoAnswer& e) {
  std::fprintf(stderr, "fastzab-cli: %s\n", e.what.c_str());
  return kExitNoAnswer;
}

// A reply, copied out of its connection.
struct Reply {
  client::Type type = client::Type::error;
  client::ErrorCode code = client::ErrorCode::bad_request;  // error
  std::uint64_t value = 0;  // write_ok: the zxid; transfer_ok: the server
  std::string body;
};

// One attempt, on a connection of its own: sends `request` and waits for the reply to it, until
// `deadline`. `sent` tells whether the request went out whole (a failure after that leaves a
// write's outcome unknown).
std::expected<Reply, NoAnswer> request_once(const Endpoint& ep, Clock::time_point deadline,
                                            int timeout_ms, const client::Message& request,
                                            bool& sent) {
  sent = false;
  Connection conn(ep, deadline, timeout_ms);
  if (auto c = conn.connect(); !c) return std::unexpected(c.error());
  std::vector<std::byte> frame;
  client::encode(request, frame);
  if (auto s = conn.send_all(frame); !s) return std::unexpected(s.error());
  sent = true;
  client::Message reply;
  if (auto r = conn.receive(reply); !r) return std::unexpected(r.error());
  if (reply.id != kRequestId) {
    return std::unexpected(NoAnswer{ep.text + ": garbage reply: request id " +
                                        std::to_string(reply.id) + ", sent " +
                                        std::to_string(kRequestId),
                                    true});
  }
  Reply out;
  out.type = reply.type;
  out.code = reply.code;
  out.value = reply.type == client::Type::transfer_ok ? reply.server : reply.zxid;
  out.body.assign(as_text(reply.body));
  return out;
}

// An error reply is printed here (status 1); a reply of another type than `expected` is
// garbage (status 3).
int check_reply(const Endpoint& ep, const Reply& reply, client::Type expected) {
  if (reply.type == client::Type::error) {
    std::fprintf(stderr, "fastzab-cli: %s: %s\n", client::to_string(reply.code),
                 reply.body.c_str());
    return kExitServerError;
  }
  if (reply.type != expected) {
    char type[8];
    std::snprintf(type, sizeof type, "0x%02x", static_cast<unsigned>(reply.type));
    return no_answer(
        NoAnswer{ep.text + ": garbage reply: a message of type " + type + " to this request"});
  }
  return kExitGood;
}

// Sends `request` once, waits for the reply to it.
int exchange(const Endpoint& ep, int timeout_ms, const client::Message& request,
             client::Type expected, std::string& out_body, std::uint64_t& out_zxid) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  bool sent = false;
  const auto reply = request_once(ep, deadline, timeout_ms, request, sent);
  if (!reply) return no_answer(reply.error());
  if (const int rc = check_reply(ep, *reply, expected); rc != kExitGood) return rc;
  out_body = reply->body;
  out_zxid = reply->value;
  return kExitGood;
}

int run_status(const Endpoint& ep, int timeout_ms) {
  client::Message request;
  request.type = client::Type::status;
  request.id = kRequestId;
  std::string body;
  std::uint64_t zxid = 0;
  if (const int rc = exchange(ep, timeout_ms, request, client::Type::status_ok, body, zxid);
      rc != kExitGood) {
    return rc;
  }
  const auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return no_answer(NoAnswer{ep.text + ": garbage reply: the status is not a JSON object"});
  }
  std::fwrite(body.data(), 1, body.size(), stdout);
  if (body.empty() || body.back() != '\n') std::fputc('\n', stdout);
  return std::fflush(stdout) == 0 ? kExitGood : kExitNoAnswer;
}

// The value of `put --file PATH` (- : standard input), read up to one byte past the largest
// value so that a too-large input is told without reading all of it.
std::expected<std::string, std::string> read_value(const std::string& path) {
  const bool from_stdin = path == "-";
  const int fd = from_stdin ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  const std::string name = from_stdin ? "standard input" : path;
  if (fd < 0) return std::unexpected(name + ": " + std::strerror(errno));
  std::string value;
  const std::size_t cap = std::size_t{client::kMaxValueBytes} + 1;
  char chunk[64 * 1024];
  std::string error;
  while (value.size() < cap) {
    const ssize_t n = ::read(fd, chunk, std::min(sizeof chunk, cap - value.size()));
    if (n > 0) {
      value.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) error = name + ": " + std::strerror(errno);
    break;
  }
  if (!from_stdin) ::close(fd);
  if (!error.empty()) return std::unexpected(error);
  if (value.size() > client::kMaxValueBytes) {
    return std::unexpected(name + " holds more than " + std::to_string(client::kMaxValueBytes) +
                           " bytes, the largest value");
  }
  return value;
}

// A client id for this run: random and nonzero.
std::uint64_t random_client_id() {
  std::random_device rd;
  std::uint64_t id = 0;
  while (id == 0) id = (std::uint64_t{rd()} << 32) ^ rd();
  return id;
}

// A write_once, sent again with the same id while its outcome is unknown (kPutAttempts, within
// --timeout). Failures before the request ever went out are final: nothing was written.
int run_put(const Endpoint& ep, int timeout_ms, const std::string& value, std::uint64_t client_id,
            std::uint64_t seq) {
  if (value.size() > client::kMaxValueBytes) {
    std::fprintf(stderr, "fastzab-cli: put: VALUE is %zu bytes, the largest is %" PRIu32 "\n",
                 value.size(), client::kMaxValueBytes);
    return kExitUsage;
  }
  client::Message request;
  request.type = client::Type::write_once;
  request.id = kRequestId;
  request.client = client_id;
  request.seq = seq;
  request.body = std::span<const std::byte>(reinterpret_cast<const std::byte*>(value.data()),
                                            value.size());
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  bool ever_sent = false;
  bool was_unknown = false;  // an earlier attempt left the outcome unknown
  auto pause = std::chrono::milliseconds(kFirstRetryPause);
  for (int attempt = 1;; ++attempt) {
    bool sent = false;
    const auto reply = request_once(ep, deadline, timeout_ms, request, sent);
    ever_sent = ever_sent || sent;
    const auto nothing_proposed = [](client::ErrorCode c) {
      return c == client::ErrorCode::no_leader || c == client::ErrorCode::unavailable ||
             c == client::ErrorCode::rejected;
    };
    const bool unknown =
        reply ? reply->type == client::Type::error &&
                    (reply->code == client::ErrorCode::unknown_outcome ||
                     (was_unknown && nothing_proposed(reply->code)))
              : ever_sent && !reply.error().garbage;
    was_unknown = unknown;
    if (!unknown || attempt >= kPutAttempts || Clock::now() + pause >= deadline) {
      const int rc = reply ? check_reply(ep, *reply, client::Type::write_ok)
                           : no_answer(reply.error());
      if (rc == kExitGood) {
        std::printf("0x%016" PRIx64 "\n", reply->value);
        return std::fflush(stdout) == 0 ? kExitGood : kExitNoAnswer;
      }
      if (unknown) {
        std::fprintf(stderr,
                     "fastzab-cli: put: the write may have committed; to learn its zxid, put the "
                     "same value again with --client-id %" PRIu64 " --seq %" PRIu64 "\n",
                     client_id, seq);
      }
      return rc;
    }
    const std::string why =
        reply ? std::string(client::to_string(reply->code)) + ": " + reply->body
              : reply.error().what;
    std::fprintf(stderr,
                 "fastzab-cli: put: %s; retrying with the same id (client id %" PRIu64
                 ", seq %" PRIu64 "), attempt %d of %d\n",
                 why.c_str(), client_id, seq, attempt + 1, kPutAttempts);
    std::this_thread::sleep_for(pause);
    pause *= 2;
  }
}

int run_transfer(const Endpoint& ep, int timeout_ms, std::uint64_t target) {
  client::Message request;
  request.type = client::Type::transfer;
  request.id = kRequestId;
  request.server = target;
  std::string body;
  std::uint64_t new_leader = 0;
  if (const int rc =
          exchange(ep, timeout_ms, request, client::Type::transfer_ok, body, new_leader);
      rc != kExitGood) {
    return rc;
  }
  std::printf("%" PRIu64 "\n", new_leader);
  return std::fflush(stdout) == 0 ? kExitGood : kExitNoAnswer;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A client of one fastzab server's client port.", "fastzab-cli"};
  app.require_subcommand(1);
  app.fallthrough();  // --server and --timeout may also follow the command
  app.footer(kExitHelp);

  std::string server_text;
  int timeout_ms = 5000;
  app.add_option("--server", server_text, "The server's client port, HOST:PORT or [IPV6]:PORT")
      ->required()
      ->type_name("HOST:PORT");
  app.add_option("--timeout", timeout_ms,
                 "Milliseconds for the whole exchange: connect, request and reply")
      ->check(CLI::Range(1, 3'600'000))
      ->type_name("MS")
      ->capture_default_str();

  CLI::App* status_cmd = app.add_subcommand(
      "status", "Print the server's status: one line of JSON with id, role, phase, leader, "
                "epoch, last_zxid and committed_zxid");
  std::string value;
  CLI::App* put_cmd = app.add_subcommand(
      "put", "Write VALUE; print the zxid it committed at (0x%016x). A follower forwards the "
             "write to its leader. Sent with a write id (a random client id and seq 1, or "
             "--client-id/--seq): when its outcome is unknown (unknown_outcome, or the "
             "connection lost after sending) it is sent again with the same id, so it is "
             "applied at most once");
  CLI::Option* value_opt =
      put_cmd->add_option("VALUE", value, "The value's bytes (the argument as given)")
          ->type_name("");
  std::string value_file;
  CLI::Option* file_opt =
      put_cmd->add_option("--file", value_file,
                          "Read the value from this file instead (- : standard input); for "
                          "values a command line cannot hold (up to 1 MiB)")
          ->type_name("PATH");
  value_opt->excludes(file_opt);
  std::uint64_t client_id = 0;
  std::uint64_t seq = 1;
  CLI::Option* client_opt =
      put_cmd->add_option("--client-id", client_id,
                          "The write's client id (default: a random one per run). With the "
                          "same --seq and value, a put that may have committed is retried: it "
                          "answers the original zxid and is applied at most once")
          ->check(CLI::Range(std::uint64_t{1}, UINT64_MAX))
          ->type_name("N");
  put_cmd
      ->add_option("--seq", seq,
                   "The write's sequence for that client id; a client's sequences must increase "
                   "from one write to the next (an older one fails as stale_sequence)")
      ->needs(client_opt)
      ->type_name("S")
      ->capture_default_str();

  std::uint64_t transfer_to = 0;
  CLI::App* transfer_cmd = app.add_subcommand(
      "transfer", "Hand leadership over: the server (which must be the established leader) stops "
                  "taking writes, waits until the target holds everything, and makes it the "
                  "leader of the next epoch without an election. Prints the new leader's id");
  transfer_cmd->add_option("--to", transfer_to,
                           "The server id to hand to (default: the leader's choice, the "
                           "follower that has acknowledged the most)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{INT64_MAX}))
      ->type_name("ID");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11's own codes are 1xx; a bad command line is 2 here (--help is a ParseError too,
    // with status 0).
    return app.exit(e) == 0 ? kExitGood : kExitUsage;
  }
  const auto endpoint = parse_endpoint(server_text);
  if (!endpoint) {
    std::fprintf(stderr,
                 "fastzab-cli: --server: '%s' is not HOST:PORT (or [IPV6]:PORT) with a port in "
                 "1..65535\n",
                 server_text.c_str());
    return kExitUsage;
  }
  if (status_cmd->parsed()) return run_status(*endpoint, timeout_ms);
  if (transfer_cmd->parsed()) return run_transfer(*endpoint, timeout_ms, transfer_to);
  if (put_cmd->parsed() && value_opt->count() == 0 && file_opt->count() == 0) {
    std::fprintf(stderr, "fastzab-cli: put: give VALUE or --file PATH\n");
    return kExitUsage;
  }
  if (file_opt->count() > 0) {
    auto read = read_value(value_file);
    if (!read) {
      std::fprintf(stderr, "fastzab-cli: put --file: %s\n", read.error().c_str());
      return kExitUsage;
    }
    value = std::move(*read);
  }
  if (client_opt->count() == 0) client_id = random_client_id();
  return run_put(*endpoint, timeout_ms, value, client_id, seq);
}
