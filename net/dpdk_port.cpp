#include "net/dpdk_port.h"

// rte_intr_instance_alloc and its setters are experimental in DPDK 22.11, and the only way to
// put an fd of ours in the interrupt thread's epoll set (the memif park below).
#define ALLOW_EXPERIMENTAL_API 1
#include <rte_alarm.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_interrupts.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>

namespace fastzab::net::dpdk {

namespace {

std::atomic<bool> g_eal_taken{false};
std::atomic<std::uint32_t> g_pool_serial{0};

std::string dpdk_says(int err) { return rte_strerror(err < 0 ? -err : err); }

// memif's control path runs on the EAL's interrupt thread, and when a peer goes away it unmaps
// the shared rings (memif_disconnect) with no lock against a polling thread copying into them
// in a burst: a server died with its polling thread in tx_burst's copy and the interrupt thread
// in munmap (a core dump; 2 of 10 test_basic runs over memif, at a peer's exit). So while a
// memif port is open, the interrupt thread is parked in a callback of ours, and let go for one
// round of its epoll loop every 10 ms (every millisecond while a memif link is down; at once
// when we ask it to run something: wake()), only when no burst runs; a burst on a memif port
// runs only while it is parked (a turn that finds it free does no I/O on those ports). A peer's
// disconnect waits up to 10 ms. Let go every millisecond all the time, the three interrupt
// threads of a 3-server memif cluster on two busy CPUs cost w=256 commits/s about 1.5x
// (fastzab-bench, park on and off side by side); every 10 ms, no difference was measured.
namespace park {
// Let go every 10 ms while every memif link is up (a peer's disconnect waits that long), every
// millisecond while one is down: memif's connect is a dozen messages each way, and a link
// still down at the transport's second look (100 ms apart) is restarted, which began the
// handshake again.
constexpr auto kParkedUp = std::chrono::milliseconds(10);
constexpr auto kParkedDown = std::chrono::milliseconds(1);
std::atomic<int> links_down{0};  // memif ports last seen down (Port::link_up)
std::atomic<int> bursting{0};    // bursts on memif ports running now
std::atomic<bool> parked{false};
std::atomic<int> ports{0};       // memif ports open
std::atomic<bool> armed{false};  // the park cycle runs
std::atomic<bool> off{false};    // no park could be set up: bursts run unguarded
int kick_fd = -1;                // an eventfd in the interrupt thread's epoll set
std::mutex wake_mutex;
std::condition_variable wake_cv;
bool wake_now = false;  // under wake_mutex
int passes = 0;         // hold() calls to return at once (the interrupt thread's only)

// Lets the parked interrupt thread go now: an alarm of ours waits for it.
void wake() {
  {
    const std::lock_guard<std::mutex> lock(wake_mutex);
    wake_now = true;
  }
  wake_cv.notify_one();
}

// Makes the interrupt thread call hold() at its next epoll round, which (level-triggered, the
// fd readable) is at once: let go, it runs what waits (a memif message, an alarm) and comes
// straight back, never sleeping in epoll while bursts are held off. (Let go with a timer
// instead, it slept, and woke late on a CPU a busy poller held: perf-regress over memif
// measured bursts held off long enough to halve the commits a second.)
void kick() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(kick_fd, &one, sizeof one);
}

void hold(void*) {
  std::uint64_t drained = 0;
  [[maybe_unused]] const auto n = ::read(kick_fd, &drained, sizeof drained);
  if (ports.load() == 0) {  // the last memif port closed: the cycle ends
    armed.store(false);
    if (ports.load() > 0 && !armed.exchange(true)) kick();  // unless one opened meanwhile
    return;
  }
  if (passes > 0) {  // woken for an alarm: its timer may come after this fd in the epoll batch
    --passes;
    kick();
    return;
  }
  parked.store(true);
  {
    std::unique_lock<std::mutex> lock(wake_mutex);
    wake_cv.wait_for(lock, links_down.load() > 0 ? kParkedDown : kParkedUp, [] { return wake_now; });
    if (std::exchange(wake_now, false)) passes = 2;
  }
  for (;;) {
    parked.store(false);
    if (bursting.load() == 0) break;  // else a burst began before it saw parked go false
    parked.store(true);
    std::this_thread::yield();  // a burst takes microseconds
  }
  kick();
}

bool set_up() {
  kick_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (kick_fd < 0) return false;
  rte_intr_handle* handle = rte_intr_instance_alloc(RTE_INTR_INSTANCE_F_PRIVATE);
  if (handle == nullptr || rte_intr_fd_set(handle, kick_fd) != 0 ||
      rte_intr_type_set(handle, RTE_INTR_HANDLE_EXT) != 0 ||
      rte_intr_callback_register(handle, hold, nullptr) != 0) {
    return false;  // the handle and the fd live as long as the process: never freed
  }
  return true;
}

void arm() {
  if (ports.load() == 0 || armed.exchange(true)) return;
  static const bool ready = set_up();
  if (!ready) {
    off.store(true);  // bursts as before, rather than none at all
    return;
  }
  kick();
}

// A burst on a memif port may run while a Ticket says ok().
class Ticket {
 public:
  explicit Ticket(bool guarded) {
    if (!guarded || off.load(std::memory_order_relaxed)) return;
    ok_ = false;
    if (!parked.load()) return;
    bursting.fetch_add(1);
    entered_ = true;
    // Dekker with hold(), which stores parked=false and then reads bursting: this adds to
    // bursting and then reads parked. Sequentially consistent, one of the two sees the other.
    ok_ = parked.load();
  }
  // After a refusal: the interrupt thread, let go, may be waiting for this CPU (a busy
  // poller's, which the scheduler would give it only after the poller's slice: milliseconds
  // of bursts held off). Yield it, so that the thread parks again at once.
  static void make_way() noexcept { std::this_thread::yield(); }
  ~Ticket() {
    if (entered_) bursting.fetch_sub(1);
  }
  Ticket(const Ticket&) = delete;
  Ticket& operator=(const Ticket&) = delete;
  bool ok() const noexcept { return ok_; }

 private:
  bool entered_ = false;
  bool ok_ = true;
};
}  // namespace park

// Runs `fn` on the EAL's interrupt thread and waits for it. Some virtual devices (memif) handle
// their control channel there: a peer's connect or disconnect message runs the driver's
// callbacks on that thread, and a port started, stopped or closed from another thread at the
// same moment raced them (a memif server died in memif's callback when its peers shut down with
// it). Run there, the two are serialized. An alarm is the EAL's way to run code on that thread.
template <class Fn>
void on_interrupt_thread(Fn&& fn) {
  struct Call {
    Fn* fn;
    std::atomic<bool> done{false};
  } call{&fn};
  if (rte_thread_is_intr() ||
      rte_eal_alarm_set(1, [](void* arg) {
        auto* c = static_cast<Call*>(arg);
        (*c->fn)();
        c->done.store(true, std::memory_order_release);
      }, &call) != 0) {
    fn();  // already there, or no alarm could be set: run it here
    return;
  }
  park::wake();
  while (!call.done.load(std::memory_order_acquire)) {
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

// The value of `key` in a vdev's comma-separated arguments ("net_memif0,role=server,..."), or
// empty.
std::string_view vdev_arg(std::string_view devargs, std::string_view key) {
  for (std::size_t at = devargs.find(',');
       at != std::string_view::npos && at < devargs.size();) {
    const std::size_t end = std::min(devargs.find(',', at + 1), devargs.size());
    const std::string_view item = devargs.substr(at + 1, end - at - 1);
    if (item.size() > key.size() && item.starts_with(key) && item[key.size()] == '=') {
      return item.substr(key.size() + 1);
    }
    at = end;
  }
  return {};
}

// A killed memif server leaves its socket file, and a new one cannot listen on it. Only a socket
// is removed (never a regular file a typo names), and only for role=server.
void remove_stale_memif_sockets(std::span<const std::string> args) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view devargs = args[i];
    if (devargs == "--vdev" && i + 1 < args.size()) {
      devargs = args[++i];
    } else if (devargs.starts_with("--vdev=")) {
      devargs.remove_prefix(7);
    } else {
      continue;
    }
    if (!devargs.starts_with("net_memif") || vdev_arg(devargs, "role") != "server" ||
        vdev_arg(devargs, "socket-abstract") != "no") {
      continue;
    }
    const std::string socket(vdev_arg(devargs, "socket"));
    struct stat st{};
    if (!socket.empty() && ::lstat(socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      ::unlink(socket.c_str());
    }
  }
}

}  // namespace

Result<std::unique_ptr<Eal>> Eal::init(std::span<const std::string> args) {
  if (g_eal_taken.exchange(true)) {
    return fail(errc::dpdk_error, "the EAL is already set up in this process (DPDK allows one)");
  }
  // rte_eal_init may reorder argv: give it copies it can own.
  std::vector<std::string> owned{"fastzab"};
  owned.insert(owned.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : owned) argv.push_back(a.data());
  argv.push_back(nullptr);
  remove_stale_memif_sockets(args);
  cpu_set_t affinity;
  const bool had_affinity =
      pthread_getaffinity_np(pthread_self(), sizeof affinity, &affinity) == 0;
  const int ok = rte_eal_init(static_cast<int>(owned.size()), argv.data());
  if (had_affinity) pthread_setaffinity_np(pthread_self(), sizeof affinity, &affinity);
  if (ok < 0) {
    std::string joined;
    for (const std::string& a : args) joined += (joined.empty() ? "" : " ") + a;
    return fail(errc::dpdk_error,
                "EAL init failed: " + dpdk_says(rte_errno) + " (arguments: " + joined + ")");
  }
  return std::unique_ptr<Eal>(new Eal(rte_eal_get_runtime_dir()));
}

Eal::~Eal() {
  // No rte_eal_cleanup(): in DPDK 22.11 it unmaps memory while the EAL's interrupt thread,
  // which it does not stop, still walks its handles there, and 2 of 15 runs of a memif test
  // ended in a segfault inside that thread at exit. An Eal lives until its process ends (DPDK
  // allows no second one), and the kernel frees its memory then; what would outlive the
  // process is its runtime directory, removed here.
  std::error_code ignored;
  if (!runtime_dir_.empty()) std::filesystem::remove_all(runtime_dir_, ignored);
}

std::uint16_t Eal::ports() const noexcept { return rte_eth_dev_count_avail(); }

Result<std::uint16_t> Eal::port_named(const std::string& name) const {
  std::uint16_t port = 0;
  if (rte_eth_dev_get_port_by_name(name.c_str(), &port) != 0) {
    return fail(errc::dpdk_error, "DPDK has no port named " + name + " (" +
                                      std::to_string(ports()) + " ports; is its --vdev missing?)");
  }
  return port;
}

ThreadLcore::ThreadLcore() {
  // rte_thread_register keeps the thread's affinity; it only fails when every lcore slot is
  // taken, and then the thread works as before, without the cache.
  if (rte_lcore_id() == LCORE_ID_ANY) registered_ = rte_thread_register() == 0;
}

ThreadLcore::~ThreadLcore() {
  if (registered_) rte_thread_unregister();
}

const char* invalid_reason(const PortConfig& c) noexcept {
  if (c.rx_descriptors == 0 || c.tx_descriptors == 0) return "descriptors must be at least 1";
  if (c.burst == 0 || c.burst > 512) return "burst must be 1 to 512";
  if (c.mbufs < 2u * c.burst) return "mbufs must be at least twice the burst";
  if (c.mbuf_cache > RTE_MEMPOOL_CACHE_MAX_SIZE || c.mbuf_cache > c.mbufs / 2) {
    return "mbuf_cache must be at most 512 and half of mbufs";
  }
  if (c.tx_drain_tries == 0) return "tx_drain_tries must be at least 1";
  if (c.tx_backlog == 0) return "tx_backlog must be at least 1";
  return nullptr;
}

Result<std::unique_ptr<Port>> Port::open(const Eal& eal, const PortConfig& config) {
  if (const char* why = invalid_reason(config)) return fail(errc::invalid_config, why);
  const std::string port_name = "DPDK port " + std::to_string(config.port);
  if (!rte_eth_dev_is_valid_port(config.port)) {
    return fail(errc::dpdk_error, port_name + " does not exist (DPDK found " +
                                      std::to_string(eal.ports()) + " ports)");
  }
  const int socket = rte_eth_dev_socket_id(config.port);
  rte_mempool* pools[2] = {nullptr, nullptr};  // RX, TX
  const auto free_pools = [&] {
    for (rte_mempool* p : pools) rte_mempool_free(p);
  };
  for (rte_mempool*& pool : pools) {
    const std::string pool_name = "fz_pool_" + std::to_string(g_pool_serial.fetch_add(1));
    pool = rte_pktmbuf_pool_create(pool_name.c_str(), config.mbufs, config.mbuf_cache, 0,
                                   RTE_MBUF_DEFAULT_BUF_SIZE, socket < 0 ? SOCKET_ID_ANY : socket);
    if (pool == nullptr) {
      const std::string why = dpdk_says(rte_errno);
      free_pools();
      return fail(errc::dpdk_error, port_name + ": an mbuf pool of " + std::to_string(config.mbufs) +
                                        " mbufs could not be made: " + why + " (raise the EAL's -m)");
    }
  }
  rte_mempool* const pool = pools[0];
  const auto refuse = [&](const char* step, int err) {
    free_pools();
    return fail(errc::dpdk_error, port_name + ": " + step + " failed: " + dpdk_says(err));
  };
  std::uint16_t rx = config.rx_descriptors;
  std::uint16_t tx = config.tx_descriptors;
  rte_eth_conf conf{};
  if (int r = rte_eth_dev_configure(config.port, 1, 1, &conf); r != 0) return refuse("configure", r);
  if (int r = rte_eth_dev_adjust_nb_rx_tx_desc(config.port, &rx, &tx); r != 0) {
    return refuse("descriptor sizing", r);
  }
  if (int r = rte_eth_rx_queue_setup(config.port, 0, rx, static_cast<unsigned>(socket < 0 ? SOCKET_ID_ANY : socket),
                                     nullptr, pool);
      r != 0) {
    return refuse("RX queue setup", r);
  }
  if (int r = rte_eth_tx_queue_setup(config.port, 0, tx, static_cast<unsigned>(socket < 0 ? SOCKET_ID_ANY : socket),
                                     nullptr);
      r != 0) {
    return refuse("TX queue setup", r);
  }
  const std::size_t room = rte_pktmbuf_data_room_size(pool) - RTE_PKTMBUF_HEADROOM;
  std::unique_ptr<Port> port(new Port(config, pools[0], pools[1], room));
  int started = 0;
  on_interrupt_thread([&] { started = rte_eth_dev_start(config.port); });
  if (int r = started; r != 0) {
    // Not fatal: a memif client cannot start while its server's socket is missing. The port
    // stays stopped and restart() tries again; start_error() says why meanwhile.
    port->stopped_ = true;
    port->start_error_ = port_name + ": start failed: " + dpdk_says(r) + " (will retry)";
  }
  rte_eth_dev_info info{};
  if (rte_eth_dev_info_get(config.port, &info) == 0 && info.driver_name != nullptr &&
      std::string_view(info.driver_name) == "net_memif") {
    port->memif_ = true;
    port->seen_down_ = true;  // until link_up() sees it up
    park::links_down.fetch_add(1);
    park::ports.fetch_add(1);
    park::arm();
  }
  return port;
}

Port::Port(const PortConfig& config, rte_mempool* rx_pool, rte_mempool* tx_pool, std::size_t data_room)
    : config_(config), rx_pool_(rx_pool), tx_pool_(tx_pool), data_room_(data_room) {
  pending_.reserve(config.tx_backlog);
  rx_.resize(config.burst);
}

Port::~Port() {
  wait_for_background_restart();  // its alarm holds `this`
  for (rte_mbuf* m : pending_) rte_pktmbuf_free(m);
  on_interrupt_thread([this] {
    if (!stopped_) rte_eth_dev_stop(config_.port);
    rte_eth_dev_close(config_.port);
  });
  if (memif_) {
    if (seen_down_) park::links_down.fetch_sub(1);
    park::ports.fetch_sub(1);  // the parking ends with the last memif port
  }
  rte_mempool_free(tx_pool_);
  rte_mempool_free(rx_pool_);
}

bool Port::queue(std::span<const std::byte> head, std::span<const std::byte> body) {
  const std::size_t bytes = head.size() + body.size();
  // Empty: memif in copy mode would send its ring slot's previous packet again.
  if (bytes == 0 || bytes > data_room_) return false;
  if (pending_.size() >= config_.tx_backlog) {
    ++counters_.tx_full;
    return false;
  }
  rte_mbuf* m = rte_pktmbuf_alloc(tx_pool_);
  if (m == nullptr) {
    ++counters_.pool_empty;
    return false;
  }
  char* data = rte_pktmbuf_append(m, static_cast<std::uint16_t>(bytes));
  if (!head.empty()) std::memcpy(data, head.data(), head.size());
  if (!body.empty()) std::memcpy(data + head.size(), body.data(), body.size());
  pending_.push_back(m);
  return true;
}

std::size_t Port::flush() {
  // A stopped port's burst functions are DPDK's error stubs; a restarting one is the interrupt
  // thread's until it is done.
  if (restarting() || stopped_) return 0;
  const park::Ticket ticket(memif_);
  if (!ticket.ok()) {  // the interrupt thread is let go: a memif disconnect may run
    park::Ticket::make_way();
    return 0;
  }
  std::size_t sent = 0;
  for (std::uint32_t tries = 0; sent < pending_.size() && tries < config_.tx_drain_tries;) {
    const auto n = static_cast<std::uint16_t>(std::min<std::size_t>(config_.burst, pending_.size() - sent));
    const std::uint16_t took = rte_eth_tx_burst(config_.port, 0, pending_.data() + sent, n);
    sent += took;
    if (took == 0) ++tries;
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(sent));
  counters_.tx_packets += sent;
  counters_.tx_deferred += pending_.size();
  // On an idle turn, give back the mbufs the driver finished sending: some PMDs free them only
  // when the TX ring wraps, which an idle port never does. (While sending, the ring does.)
  if (sent == 0 && pending_.empty()) rte_eth_tx_done_cleanup(config_.port, 0, 0);
  return sent;
}

std::size_t Port::receive(FunctionRef<void(std::span<const std::byte>)> on_packet) {
  if (restarting() || stopped_) return 0;
  std::uint16_t n = 0;
  {
    const park::Ticket ticket(memif_);
    if (!ticket.ok()) {  // the interrupt thread is let go: a memif disconnect may run
      park::Ticket::make_way();
      return 0;
    }
    n = rte_eth_rx_burst(config_.port, 0, rx_.data(), config_.burst);
  }
  for (std::uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = rx_[i];
    // One segment per packet: no scatter is configured and every packet fits an mbuf.
    on_packet(std::span<const std::byte>(rte_pktmbuf_mtod(m, const std::byte*), rte_pktmbuf_data_len(m)));
    rte_pktmbuf_free(m);
  }
  counters_.rx_packets += n;
  return n;
}

bool Port::link_up() const noexcept {
  rte_eth_link link{};
  const bool up = !restarting() && rte_eth_link_get_nowait(config_.port, &link) == 0 &&
                  link.link_status == RTE_ETH_LINK_UP;
  if (memif_ && up == seen_down_) {
    seen_down_ = !up;
    park::links_down.fetch_add(up ? -1 : 1);
  }
  return up;
}

// On the interrupt thread: stop (unless stopped) and start. Returns why it failed, or empty.
std::string Port::stop_and_start() {
  if (!stopped_) {
    if (int r = rte_eth_dev_stop(config_.port); r != 0) {
      return "DPDK port " + std::to_string(config_.port) + ": stop failed: " + dpdk_says(r);
    }
    stopped_ = true;
  }
  if (int r = rte_eth_dev_start(config_.port); r != 0) {
    // A memif client refuses to start while its server's socket is missing: stay stopped, and
    // let the next restart try again.
    return "DPDK port " + std::to_string(config_.port) + ": start failed: " + dpdk_says(r);
  }
  stopped_ = false;
  return {};
}

Result<void> Port::restart() {
  wait_for_background_restart();
  std::string why;
  on_interrupt_thread([&] { why = stop_and_start(); });
  if (!why.empty()) return fail(errc::dpdk_error, why);
  start_error_.clear();
  return {};
}

void Port::restart_in_background() {
  if (restarting()) return;
  restarting_.store(true, std::memory_order_relaxed);
  const auto run = [](void* arg) {
    auto* port = static_cast<Port*>(arg);
    port->background_error_ = port->stop_and_start();
    port->restarting_.store(false, std::memory_order_release);
  };
  if (rte_thread_is_intr() || rte_eal_alarm_set(1, run, this) != 0) {
    run(this);
    return;
  }
  park::wake();
}

void Port::wait_for_background_restart() {
  while (restarting()) std::this_thread::sleep_for(std::chrono::microseconds(20));
}

std::array<std::uint8_t, 6> Port::mac() const {
  rte_ether_addr addr{};
  rte_eth_macaddr_get(config_.port, &addr);
  std::array<std::uint8_t, 6> out{};
  std::copy(std::begin(addr.addr_bytes), std::end(addr.addr_bytes), out.begin());
  return out;
}

}  // namespace fastzab::net::dpdk
