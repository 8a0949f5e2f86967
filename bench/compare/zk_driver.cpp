// zk_driver: a write load for Apache ZooKeeper through its C client (libzookeeper_mt), the
// ZooKeeper half of scripts/compare-zookeeper. Two modes, each printing one JSON object on stdout:
//
//   zk_driver load --servers H:P[,H:P...] --window W [--value-bytes 64] [--warmup S] [--duration S]
//     Creates one znode, then keeps W zoo_aset() calls of a value of the given size outstanding
//     on it (each completion sends the next). Latency runs from the zoo_aset() call to its
//     completion callback. Writes acknowledged during the warm-up are not counted; the measured
//     interval is the next `duration` seconds (acknowledgements in it are counted).
//
//   zk_driver failover --servers H:P [--value-bytes 64] [--timeout S]
//     Writes one at a time (window 1) through the given server. Prints the line `ready` once the
//     writes flow; then reads one line `kill NS` on stdin: NS is the CLOCK_MONOTONIC time, in
//     nanoseconds, at which the caller sent SIGKILL to the leader (Python's time.monotonic_ns()
//     and std::chrono::steady_clock are both CLOCK_MONOTONIC on Linux). It keeps writing until
//     a write is acknowledged with a zxid of a newer epoch than the last one before the kill (so
//     the new leader committed it), goes on for --after-ms more, and reports the time from the
//     kill to that acknowledgement and the longest gap between two acknowledgements.
//
// Every duration in the output ends in its unit (_us, _ms, _s). Exit status: 0 on success, 1 when
// the measurement failed (the JSON says why in "error"), 2 on a usage error.
#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

struct Options {
  std::string mode;
  std::string servers;
  std::string znode = "/fastzab-compare";
  int window = 1;
  int value_bytes = 64;
  double warmup_s = 2.0;
  double duration_s = 10.0;
  int session_timeout_ms = 10000;
  double connect_timeout_s = 30.0;
  double timeout_s = 60.0;  // failover: the longest wait from the kill to the new leader's commit
  int after_ms = 1000;      // failover: how long to keep writing after the first new-epoch commit
  int ready_acks = 200;     // failover: acknowledgements before printing `ready`
};

[[noreturn]] void usage(const std::string& why, int code = 2) {
  if (!why.empty()) std::fprintf(stderr, "zk_driver: %s\n", why.c_str());
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: zk_driver load --servers H:P[,H:P...] --window W [--value-bytes N] [--warmup S]\n"
               "                      [--duration S] [--znode PATH] [--session-timeout-ms MS]\n"
               "       zk_driver failover --servers H:P [--value-bytes N] [--timeout S] [--after-ms MS]\n"
               "                      [--ready-acks N] [--znode PATH] [--session-timeout-ms MS]\n"
               "One JSON object on stdout; see the comment at the top of bench/compare/zk_driver.cpp.\n");
  std::exit(code);
}

double to_double(const std::string& flag, const char* s) {
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (end == s || *end != '\0' || !(v >= 0)) usage(flag + ": not a number >= 0: " + s);
  return v;
}

int to_int(const std::string& flag, const char* s) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < 0 || v > 1000000000L) usage(flag + ": not an integer >= 0: " + s);
  return static_cast<int>(v);
}

Options parse(int argc, char** argv) {
  Options o;
  if (argc < 2) usage("");
  o.mode = argv[1];
  if (o.mode == "-h" || o.mode == "--help") usage("", 0);
  if (o.mode != "load" && o.mode != "failover") usage("unknown mode " + o.mode);
  for (int i = 2; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") usage("", 0);
    if (i + 1 >= argc) usage(flag + " needs a value");
    const char* v = argv[++i];
    if (flag == "--servers") o.servers = v;
    else if (flag == "--znode") o.znode = v;
    else if (flag == "--window") o.window = to_int(flag, v);
    else if (flag == "--value-bytes") o.value_bytes = to_int(flag, v);
    else if (flag == "--warmup") o.warmup_s = to_double(flag, v);
    else if (flag == "--duration") o.duration_s = to_double(flag, v);
    else if (flag == "--session-timeout-ms") o.session_timeout_ms = to_int(flag, v);
    else if (flag == "--connect-timeout") o.connect_timeout_s = to_double(flag, v);
    else if (flag == "--timeout") o.timeout_s = to_double(flag, v);
    else if (flag == "--after-ms") o.after_ms = to_int(flag, v);
    else if (flag == "--ready-acks") o.ready_acks = to_int(flag, v);
    else usage("unknown option " + flag);
  }
  if (o.servers.empty()) usage("--servers is required");
  if (o.window < 1) usage("--window must be >= 1");
  if (o.value_bytes > 1000000) usage("--value-bytes must be <= 1000000");
  if (o.mode == "failover") o.window = 1;
  return o;
}

// A JSON number, or null for a value that was not measured.
std::string num(double v, bool have = true) {
  if (!have) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out + "\"";
}

// The PERCENTILES object of bench/SCHEMA.md, exact (nearest rank over every sample), from
// nanoseconds to microseconds.
std::string percentiles_us(std::vector<std::int64_t> ns) {
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) {
    if (ns.empty()) return 0.0;
    auto rank = static_cast<std::size_t>(q * static_cast<double>(ns.size()) + 0.999999);
    rank = std::clamp<std::size_t>(rank, 1, ns.size());
    return static_cast<double>(ns[rank - 1]) / 1000.0;
  };
  bool have = !ns.empty();
  double sum = 0;
  for (auto v : ns) sum += static_cast<double>(v);
  double mean = have ? sum / static_cast<double>(ns.size()) / 1000.0 : 0.0;
  return "{\"count\": " + std::to_string(ns.size()) + ", \"min_us\": " + num(at(0.0), have) +
         ", \"mean_us\": " + num(mean, have) + ", \"p50_us\": " + num(at(0.50), have) +
         ", \"p90_us\": " + num(at(0.90), have) + ", \"p99_us\": " + num(at(0.99), have) +
         ", \"p999_us\": " + num(at(0.999), have) + ", \"p9999_us\": " + num(at(0.9999), have) +
         ", \"max_us\": " + num(have ? static_cast<double>(ns.back()) / 1000.0 : 0.0, have) + "}";
}

// Connection state, shared by the watcher (the client's completion thread) and the main thread.
struct Session {
  std::mutex mu;
  std::condition_variable cv;
  int state = 0;
  bool expired = false;
  std::vector<std::pair<std::int64_t, int>> changes;  // (time, new state)
};

void on_watch(zhandle_t*, int type, int state, const char*, void* ctx) {
  if (type != ZOO_SESSION_EVENT) return;
  auto* s = static_cast<Session*>(ctx);
  std::lock_guard lock(s->mu);
  s->state = state;
  if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) s->expired = true;
  s->changes.emplace_back(now_ns(), state);
  s->cv.notify_all();
}

const char* state_name(int state) {
  if (state == ZOO_CONNECTED_STATE) return "connected";
  if (state == ZOO_CONNECTING_STATE) return "connecting";
  if (state == ZOO_ASSOCIATING_STATE) return "associating";
  if (state == ZOO_EXPIRED_SESSION_STATE) return "expired";
  if (state == ZOO_AUTH_FAILED_STATE) return "auth_failed";
  return "other";
}

// Connects and makes sure the znode exists. Returns null with `error` set on failure.
zhandle_t* connect_and_create(const Options& o, Session& session, const std::string& value, std::string& error) {
  zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
  zoo_set_log_stream(stderr);
  zoo_deterministic_conn_order(1);  // the given order: the caller chooses the server
  zhandle_t* zh = zookeeper_init(o.servers.c_str(), on_watch, o.session_timeout_ms, nullptr, &session, 0);
  if (zh == nullptr) {
    error = std::string("zookeeper_init failed: ") + std::strerror(errno);
    return nullptr;
  }
  {
    std::unique_lock lock(session.mu);
    auto deadline = Clock::now() + std::chrono::duration<double>(o.connect_timeout_s);
    if (!session.cv.wait_until(lock, deadline, [&] { return session.state == ZOO_CONNECTED_STATE || session.expired; }) ||
        session.expired) {
      error = "could not connect to " + o.servers + " within " + num(o.connect_timeout_s) + " s";
      lock.unlock();
      zookeeper_close(zh);
      return nullptr;
    }
  }
  struct Created {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    int rc = 0;
  } created;
  auto on_created = [](int rc, const char*, const void* data) {
    auto* c = static_cast<Created*>(const_cast<void*>(data));
    std::lock_guard lock(c->mu);
    c->rc = rc;
    c->done = true;
    c->cv.notify_all();
  };
  int rc = zoo_acreate(zh, o.znode.c_str(), value.data(), static_cast<int>(value.size()), &ZOO_OPEN_ACL_UNSAFE,
                       ZOO_PERSISTENT, on_created, &created);
  if (rc == ZOK) {
    std::unique_lock lock(created.mu);
    if (!created.cv.wait_for(lock, std::chrono::duration<double>(o.connect_timeout_s), [&] { return created.done; })) {
      rc = ZOPERATIONTIMEOUT;
    } else {
      rc = created.rc;
    }
  }
  if (rc != ZOK && rc != ZNODEEXISTS) {
    error = "creating " + o.znode + " failed: " + zerror(rc);
    zookeeper_close(zh);
    return nullptr;
  }
  return zh;
}

void print_error_json(const Options& o, const std::string& error) {
  std::printf("{\"mode\": %s, \"window\": %d, \"value_bytes\": %d, \"error\": %s}\n", quoted(o.mode).c_str(),
              o.window, o.value_bytes, quoted(error).c_str());
  std::fflush(stdout);
}

// ---- load ----------------------------------------------------------------------------------

struct Load;

struct Slot {
  Load* load;
  std::int64_t sent_ns = 0;
};

struct Load {
  zhandle_t* zh = nullptr;
  std::string path;
  std::string value;
  std::int64_t measure_from_ns = 0;  // acknowledgements in [from, to) are counted
  std::int64_t measure_to_ns = 0;
  std::atomic<bool> stopping{false};
  std::atomic<int> outstanding{0};
  // Touched by the completion thread only (the client calls every completion on that one
  // thread), read by the main thread after zookeeper_close() has joined it.
  std::vector<std::int64_t> latencies_ns;
  std::uint64_t acks_total = 0;
  std::uint64_t errors = 0;
  std::map<int, std::uint64_t> error_codes;
};

void send_load(Slot* slot);

void on_set(int rc, const Stat*, const void* data) {
  std::int64_t done = now_ns();
  auto* slot = static_cast<Slot*>(const_cast<void*>(data));
  Load& l = *slot->load;
  bool counted = done >= l.measure_from_ns && done < l.measure_to_ns;
  if (rc == ZOK) {
    ++l.acks_total;
    if (counted) l.latencies_ns.push_back(done - slot->sent_ns);
  } else {
    if (counted) ++l.errors;
    ++l.error_codes[rc];
  }
  // An error stops this slot (the window shrinks, and "errors" says so): a lost session must not
  // turn into a busy loop of failing sends on cores the servers need.
  if (rc != ZOK || l.stopping.load(std::memory_order_relaxed) || done >= l.measure_to_ns) {
    l.outstanding.fetch_sub(1);
    return;
  }
  send_load(slot);
}

void send_load(Slot* slot) {
  Load& l = *slot->load;
  slot->sent_ns = now_ns();
  int rc = zoo_aset(l.zh, l.path.c_str(), l.value.data(), static_cast<int>(l.value.size()), -1, on_set, slot);
  if (rc != ZOK) {
    // Not sent (the session is gone): this slot stops.
    ++l.error_codes[rc];
    l.outstanding.fetch_sub(1);
  }
}

int run_load(const Options& o) {
  Session session;
  Load l;
  l.path = o.znode;
  l.value.assign(static_cast<std::size_t>(o.value_bytes), 'v');
  std::string error;
  l.zh = connect_and_create(o, session, l.value, error);
  if (l.zh == nullptr) {
    print_error_json(o, error);
    return 1;
  }
  double rate_guess = 200000.0;  // an upper bound, only to reserve once
  l.latencies_ns.reserve(static_cast<std::size_t>(std::min(o.duration_s * rate_guess, 5e7)));
  std::int64_t start = now_ns();
  l.measure_from_ns = start + static_cast<std::int64_t>(o.warmup_s * 1e9);
  l.measure_to_ns = l.measure_from_ns + static_cast<std::int64_t>(o.duration_s * 1e9);
  std::vector<Slot> slots(static_cast<std::size_t>(o.window));
  l.outstanding = o.window;
  for (auto& s : slots) {
    s.load = &l;
    send_load(&s);
  }
  std::this_thread::sleep_until(Clock::time_point(std::chrono::nanoseconds(l.measure_to_ns)));
  // Let the writes in flight finish (each completion after measure_to stops its slot).
  auto drain_deadline = Clock::now() + std::chrono::seconds(30);
  while (l.outstanding.load() > 0 && Clock::now() < drain_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  l.stopping = true;
  int left = l.outstanding.load();
  zookeeper_close(l.zh);  // joins the client's threads: l's fields are ours from here

  std::uint64_t commits = l.latencies_ns.size();
  std::string codes;
  for (auto& [rc, n] : l.error_codes) {
    codes += (codes.empty() ? "" : ", ") + quoted(std::to_string(rc) + " " + zerror(rc)) + ": " + std::to_string(n);
  }
  std::string err;
  if (commits == 0) err = "no write was acknowledged in the measured interval";
  else if (left > 0) err = std::to_string(left) + " writes still outstanding 30 s after the end";
  std::printf(
      "{\"mode\": \"load\", \"name\": \"closed w=%d %dB\", \"workload\": \"closed\", \"window\": %d, "
      "\"value_bytes\": %d, \"servers\": %s, \"warmup_s\": %s, \"measured_s\": %s, \"commits\": %llu, "
      "\"errors\": %llu, \"error_codes\": {%s}, \"commits_per_s\": %s, \"mb_per_s\": %s, \"latency_us\": %s%s%s}\n",
      o.window, o.value_bytes, o.window, o.value_bytes, quoted(o.servers).c_str(), num(o.warmup_s).c_str(),
      num(o.duration_s).c_str(), static_cast<unsigned long long>(commits), static_cast<unsigned long long>(l.errors),
      codes.c_str(), num(static_cast<double>(commits) / o.duration_s).c_str(),
      num(static_cast<double>(commits) * o.value_bytes / o.duration_s / 1e6).c_str(),
      percentiles_us(std::move(l.latencies_ns)).c_str(), err.empty() ? "" : ", \"error\": ",
      err.empty() ? "" : quoted(err).c_str());
  std::fflush(stdout);
  return err.empty() ? 0 : 1;
}

// ---- failover ------------------------------------------------------------------------------

struct Ack {
  std::int64_t sent_ns;
  std::int64_t done_ns;
  std::int64_t zxid;
};

struct Failover {
  zhandle_t* zh = nullptr;
  std::string path;
  std::string value;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Ack> acks;
  std::map<int, std::uint64_t> error_codes;
  std::uint64_t errors = 0;
  std::vector<std::int64_t> error_ns;  // when each error was seen
  bool in_flight = false;
  std::int64_t sent_ns = 0;
  bool stop = false;
};

void on_failover_set(int rc, const Stat* stat, const void* data) {
  std::int64_t done = now_ns();
  auto* f = static_cast<Failover*>(const_cast<void*>(data));
  std::lock_guard lock(f->mu);
  f->in_flight = false;
  if (rc == ZOK && stat != nullptr) {
    f->acks.push_back({f->sent_ns, done, stat->mzxid});
  } else {
    ++f->errors;
    ++f->error_codes[rc];
    f->error_ns.push_back(done);
  }
  f->cv.notify_all();
}

// Sends the next write unless one is in flight. After an error the caller pauses first, so that an
// unreachable server does not turn the loop into a busy one on the cores the servers need.
void failover_pump(Failover& f, std::unique_lock<std::mutex>& lock) {
  if (f.in_flight || f.stop) return;
  f.in_flight = true;
  f.sent_ns = now_ns();
  lock.unlock();
  int rc = zoo_aset(f.zh, f.path.c_str(), f.value.data(), static_cast<int>(f.value.size()), -1, on_failover_set, &f);
  lock.lock();
  if (rc != ZOK) {
    f.in_flight = false;
    ++f.errors;
    ++f.error_codes[rc];
    f.error_ns.push_back(now_ns());
  }
}

int run_failover(const Options& o) {
  Session session;
  Failover f;
  f.path = o.znode;
  f.value.assign(static_cast<std::size_t>(o.value_bytes), 'v');
  std::string error;
  f.zh = connect_and_create(o, session, f.value, error);
  if (f.zh == nullptr) {
    print_error_json(o, error);
    return 1;
  }

  // stdin: the line `kill NS`, read on a thread of its own.
  std::atomic<std::int64_t> kill_ns{0};
  std::atomic<bool> stdin_closed{false};
  std::thread reader([&] {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.rfind("kill ", 0) == 0) {
        kill_ns = std::strtoll(line.c_str() + 5, nullptr, 10);
        std::lock_guard lock(f.mu);
        f.cv.notify_all();
        return;
      }
    }
    stdin_closed = true;
    std::lock_guard lock(f.mu);
    f.cv.notify_all();
  });
  reader.detach();  // it may block in getline forever; the process exits with it

  // After a failed write (no connection): each new zoo_aset() also makes the client try to
  // reconnect at once, so this pause bounds both the retry rate and the delay it can add to the
  // measured failover (a few ms against hundreds).
  const auto backoff = std::chrono::milliseconds(5);
  std::unique_lock lock(f.mu);
  bool ready = false;
  std::int64_t ready_ns = 0;
  std::int64_t deadline_ns = 0;     // after the kill: give up at this time
  std::int64_t first_new_ns = 0;    // the first acknowledgement of the new epoch
  std::int64_t last_old_epoch = -1;
  std::size_t first_after_kill = 0;
  std::string failure;
  std::int64_t connect_deadline = now_ns() + static_cast<std::int64_t>(o.timeout_s * 1e9);
  while (true) {
    std::uint64_t errors_seen = f.errors;
    failover_pump(f, lock);
    f.cv.wait_for(lock, std::chrono::milliseconds(50), [&] {
      return !f.in_flight || stdin_closed.load() || (kill_ns.load() != 0 && deadline_ns == 0);
    });
    if (!f.in_flight && f.errors != errors_seen) {
      lock.unlock();
      std::this_thread::sleep_for(backoff);
      lock.lock();
    }
    std::int64_t now = now_ns();
    if (!ready) {
      if (f.acks.size() >= static_cast<std::size_t>(o.ready_acks)) {
        ready = true;
        ready_ns = now;
        std::printf("ready\n");
        std::fflush(stdout);
      } else if (now > connect_deadline) {
        failure = "writes did not flow within " + num(o.timeout_s) + " s";
        break;
      }
      continue;
    }
    std::int64_t k = kill_ns.load();
    if (k == 0) {
      if (stdin_closed.load()) {
        failure = "stdin closed before the `kill NS` line";
        break;
      }
      continue;
    }
    if (deadline_ns == 0) {
      deadline_ns = k + static_cast<std::int64_t>(o.timeout_s * 1e9);
      // The epoch of the last write acknowledged before the kill, and the first one after it.
      first_after_kill = f.acks.size();
      for (std::size_t i = 0; i < f.acks.size(); ++i) {
        if (f.acks[i].done_ns < k) {
          last_old_epoch = f.acks[i].zxid >> 32;
        } else if (first_after_kill == f.acks.size()) {
          first_after_kill = i;
        }
      }
      if (last_old_epoch < 0) {
        failure = "no write acknowledged before the kill";
        break;
      }
    }
    if (first_new_ns == 0) {
      for (std::size_t i = first_after_kill; i < f.acks.size(); ++i) {
        if ((f.acks[i].zxid >> 32) > last_old_epoch) {
          first_new_ns = f.acks[i].done_ns;
          break;
        }
      }
      if (first_new_ns == 0 && now > deadline_ns) {
        failure = "no write committed by a new leader within " + num(o.timeout_s) + " s of the kill";
        break;
      }
    }
    if (first_new_ns != 0 && now >= first_new_ns + static_cast<std::int64_t>(o.after_ms) * 1000000) break;
  }
  f.stop = true;
  // Wait a little for a write in flight, then close.
  f.cv.wait_for(lock, std::chrono::seconds(2), [&] { return !f.in_flight; });
  std::vector<Ack> acks = f.acks;
  auto codes_map = f.error_codes;
  std::vector<std::int64_t> error_ns = f.error_ns;
  lock.unlock();
  std::vector<std::pair<std::int64_t, int>> changes;
  {
    std::lock_guard slock(session.mu);
    changes = session.changes;
  }
  zookeeper_close(f.zh);

  std::int64_t k = kill_ns.load();
  auto ms = [](std::int64_t d) { return static_cast<double>(d) / 1e6; };
  // Longest gap between two acknowledgements from `ready` to the end (it spans the kill).
  std::int64_t longest_gap = 0, gap_from = 0;
  std::int64_t prev = ready_ns;
  for (auto& a : acks) {
    if (a.done_ns < ready_ns) continue;
    if (a.done_ns - prev > longest_gap) {
      longest_gap = a.done_ns - prev;
      gap_from = prev;
    }
    prev = a.done_ns;
  }
  std::int64_t disconnect_ns = 0, reconnect_ns = 0;
  for (auto& [t, st] : changes) {
    if (k == 0 || t < k) continue;
    if (st != ZOO_CONNECTED_STATE && disconnect_ns == 0) disconnect_ns = t;
    if (st == ZOO_CONNECTED_STATE && disconnect_ns != 0 && reconnect_ns == 0) reconnect_ns = t;
  }
  std::int64_t new_epoch = -1;
  std::uint64_t acks_after = 0;
  for (auto& a : acks) {
    if (k != 0 && a.done_ns >= k) ++acks_after;
    if (first_new_ns != 0 && a.done_ns == first_new_ns) new_epoch = a.zxid >> 32;
  }
  std::uint64_t errors_after = 0;
  for (auto t : error_ns) {
    if (k != 0 && t >= k) ++errors_after;
  }
  std::string codes;
  for (auto& [rc, n] : codes_map) {
    codes += (codes.empty() ? "" : ", ") + quoted(std::to_string(rc) + " " + zerror(rc)) + ": " + std::to_string(n);
  }
  std::string states;
  for (auto& [t, st] : changes) {
    if (k == 0 || t < k) continue;
    states += (states.empty() ? "" : ", ") + std::string("{\"at_ms\": ") + num(ms(t - k)) +
              ", \"state\": " + quoted(state_name(st)) + "}";
  }
  std::printf(
      "{\"mode\": \"failover\", \"window\": 1, \"value_bytes\": %d, \"servers\": %s, "
      "\"epoch_before\": %lld, \"epoch_after\": %s, \"kill_to_commit_ms\": %s, \"unavailable_ms\": %s, "
      "\"unavailable_from_ms\": %s, "
      "\"kill_to_disconnect_ms\": %s, \"kill_to_reconnect_ms\": %s, \"acks_after_kill\": %llu, "
      "\"errors_after_kill\": %llu, \"error_codes\": {%s}, \"session_states_after_kill\": [%s]%s%s}\n",
      o.value_bytes, quoted(o.servers).c_str(), static_cast<long long>(last_old_epoch),
      new_epoch >= 0 ? std::to_string(new_epoch).c_str() : "null", num(ms(first_new_ns - k), first_new_ns != 0).c_str(),
      num(ms(longest_gap), first_new_ns != 0).c_str(), num(ms(gap_from - k), first_new_ns != 0).c_str(),
      num(ms(disconnect_ns - k), disconnect_ns != 0).c_str(),
      num(ms(reconnect_ns - k), reconnect_ns != 0).c_str(), static_cast<unsigned long long>(acks_after),
      static_cast<unsigned long long>(errors_after), codes.c_str(), states.c_str(),
      failure.empty() ? "" : ", \"error\": ", failure.empty() ? "" : quoted(failure).c_str());
  std::fflush(stdout);
  return failure.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  return o.mode == "load" ? run_load(o) : run_failover(o);
}
