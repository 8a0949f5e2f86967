// A hostile stand-in for one server of a cluster on its DPDK memif links (issue 12: garbage input
// over memif; tests/integration/test_dpdk_garbage.py runs it). Not a test by itself.
//
//   dpdk_hostile_peer --file-prefix PREFIX --link SOCKET [--link SOCKET ...] --duration-ms N
//                     [--cluster-id C] [--sender S] [--target T] [--seed X] [--pps N]
//                     [--kinds KIND,KIND...]
//
// Each --link is a memif socket a real server listens on (role=server: its id is the lower of
// the pair); this process is the client end, as the server with id --sender (default 3) would
// be. The server on a link is --target if given, else the id in the socket's name
// (memif-A-B.sock, the one that is not --sender; cluster.py names them so), else 0.
//
// Once every link is up (restarting a port whose link stays down, as DpdkTransport does; at most
// 10 s), it sends for --duration-ms, round-robin over the links, one packet (or one short
// sequence) of each kind below in turn, every one a raw Ethernet frame with EtherType 0x88B5
// unless the kind says otherwise. The well-formed-but-wrong packets come from the project's own
// encoders (DatagramSession, wire::encode_hello, Handshake); the few fields patched by hand are
// checked against the project's decoder (datagram_session_ids). A packet is counted as sent when
// the port's TX queue took it (Port::flush); the whole kind is counted when all of its packets
// were. It also reads whatever the servers answer (REPLYs to HELLOs, CLOSEs for data of unknown
// sessions) and counts it. After the duration it lingers 300 ms, sending nothing new, so the
// servers read what is still in the rings, then prints one line per link and kind, and one JSON
// line ("result {...}") the test parses, and exits 0 (1: a link never came up or DPDK refused;
// 2: a bad command line; 3: the watchdog, duration + 30 s, fired).
//
// The EAL's runtime directory is removed at the end (net::dpdk::Eal's destructor; the watchdog
// removes it too). --pps paces it to N rounds a second (a round: one kind, one packet or pair,
// on each link; 0, the default: flat out); --kinds sends only the kinds named (by the names it
// prints).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "net/check.h"
#include "net/datagram_peer.h"
#include "net/datagram_session.h"
#include "net/dpdk_port.h"
#include "net/dpdk_transport.h"
#include "net/handshake.h"
#include "net/wire.h"

namespace fastzab::net::dpdk {
namespace {

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<std::byte>;

// The kinds, in the order each link sends them.
enum Kind : std::size_t {
  kRandom,               // random bytes after a 0x88B5 header
  kRandomControl,        // the control magic "FZDH", then random bytes
  kTruncatedHeader,      // the first 1..47 bytes of a well-formed data packet
  kUnknownSessionData,   // a well-formed data packet of session ids no live session has
  kHugeLength,           // a data packet whose payload-length field says 0xffffffff
  kHugeSequence,         // a data packet at sequence 2^63 (a huge offset in the stream)
  kOversizedFragment,    // a well-formed data packet of 1,900 payload bytes (the mtu is 1,400)
  kAckNeverSent,         // a lone ACK acknowledging up to 2^40 (data never sent)
  kHello,                // a HELLO claiming --sender, the right cluster id, a random nonce
  kConfirmWrongMac,      // that HELLO, then a CONFIRM whose MAC is random (refused)
  kHelloWrongCluster,    // a HELLO of cluster id + 1 (refused)
  kHelloClaimsTarget,    // a HELLO claiming to be the receiver itself (refused)
  kHelloTruncated,       // a HELLO control packet cut to 30 of its 64 bytes
  kReplyUnsolicited,     // a REPLY (random hello and MAC) sent to an acceptor
  kCloseRandom,          // a CLOSE for random session ids
  kOtherEtherType,       // IPv4 / IPv6 / ARP EtherTypes, random payload
  kRunt,                 // a frame shorter than an Ethernet header (1..13 bytes)
  kEmptyPayload,         // a 0x88B5 header and nothing after it
  // (No frame of zero bytes: Port::queue refuses one, since DPDK 22.11's memif TX in copy mode
  // would send its ring slot's previous packet again.)
  kKinds,
};

constexpr std::array<const char*, kKinds> kKindNames{
    "random",           "random_control",      "truncated_header",    "unknown_session_data",
    "huge_length",      "huge_sequence",       "oversized_fragment",  "ack_never_sent",
    "hello",            "confirm_wrong_mac",   "hello_wrong_cluster", "hello_claims_target",
    "hello_truncated",  "reply_unsolicited",   "close_random",        "other_ethertype",
    "runt",             "empty_payload"};

// What comes back from a server.
enum Answer : std::size_t { kReply, kClose, kOtherControl, kDatagram, kForeign, kAnswers };
constexpr std::array<const char*, kAnswers> kAnswerNames{"reply", "close", "other_control",
                                                         "datagram", "foreign"};

// The data packet header's fields patched here (README.md "Datagram sessions": the table; the
// results are checked against datagram_session_ids).
constexpr std::size_t kSeqAt = 24;
constexpr std::size_t kAckAt = 32;
constexpr std::size_t kPayloadBytesAt = 40;
constexpr std::uint8_t kControlVersion = 1;  // README.md: magic, version 1, kind, 2 zero bytes

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "dpdk_hostile_peer: %s\nusage: dpdk_hostile_peer --file-prefix PREFIX --link SOCKET "
               "[--link SOCKET ...] --duration-ms N [--cluster-id C] [--sender S] [--target T] "
               "[--seed X] [--pps N] [--kinds KIND,...]\n",
               why);
  std::exit(2);
}

std::uint64_t number(std::string_view text, const char* what) {
  std::uint64_t v = 0;
  int base = 10;
  if (text.starts_with("0x") || text.starts_with("0X")) {
    text.remove_prefix(2);
    base = 16;
  }
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v, base);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    usage((std::string(what) + " is not a number: " + std::string(text)).c_str());
  }
  return v;
}

struct Options {
  std::string prefix;
  std::vector<std::string> links;
  std::uint64_t duration_ms = 0;
  std::uint64_t cluster_id = 0x5eed;  // cluster.py's
  std::uint64_t sender = 3;
  std::optional<std::uint64_t> target;
  std::optional<std::uint64_t> seed;
  std::uint64_t pps = 0;  // rounds a second (0: flat out)
  std::array<bool, kKinds> kinds{};  // the kinds to send (--kinds; default all)
};

Options parse(int argc, char** argv) {
  Options o;
  bool duration = false;
  bool kinds = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) usage(("missing the value of " + std::string(a)).c_str());
    const std::string_view v = argv[++i];
    if (a == "--file-prefix") {
      o.prefix = v;
    } else if (a == "--link") {
      o.links.emplace_back(v);
    } else if (a == "--duration-ms") {
      o.duration_ms = number(v, "--duration-ms");
      duration = true;
    } else if (a == "--cluster-id") {
      o.cluster_id = number(v, "--cluster-id");
    } else if (a == "--sender") {
      o.sender = number(v, "--sender");
    } else if (a == "--target") {
      o.target = number(v, "--target");
    } else if (a == "--seed") {
      o.seed = number(v, "--seed");
    } else if (a == "--pps") {
      o.pps = number(v, "--pps");
    } else if (a == "--kinds") {
      for (std::size_t at = 0; at <= v.size();) {
        const std::size_t comma = std::min(v.find(',', at), v.size());
        const std::string_view name = v.substr(at, comma - at);
        const auto it = std::find(kKindNames.begin(), kKindNames.end(), name);
        if (it == kKindNames.end()) usage(("unknown kind " + std::string(name)).c_str());
        o.kinds[static_cast<std::size_t>(it - kKindNames.begin())] = true;
        kinds = true;
        at = comma + 1;
      }
    } else {
      usage(("unknown option " + std::string(a)).c_str());
    }
  }
  if (!kinds) o.kinds.fill(true);
  if (o.prefix.empty()) usage("--file-prefix is required");
  if (o.links.empty()) usage("at least one --link is required");
  if (!duration || o.duration_ms == 0 || o.duration_ms > 600'000) {
    usage("--duration-ms is required, 1 to 600000");
  }
  return o;
}

// The server at the other end of a memif socket named memif-A-B.sock: the id that is not ours.
std::uint64_t target_of(const std::string& socket, std::uint64_t sender) {
  const std::string name = std::filesystem::path(socket).filename().string();
  unsigned long long a = 0, b = 0;
  if (std::sscanf(name.c_str(), "memif-%llu-%llu.sock", &a, &b) == 2) {
    if (a == sender) return b;
    if (b == sender) return a;
  }
  return 0;
}

struct Link {
  std::string socket;
  std::uint64_t target = 0;
  std::unique_ptr<Port> port;
  std::array<std::byte, kEthernetHeaderBytes> header{};  // to anyone (point to point), 0x88B5
  std::size_t next_kind = 0;
  std::array<std::uint64_t, kKinds> sent{};
  std::array<std::uint64_t, kKinds> unsent{};  // kinds whose packets the TX queue did not take
  std::array<std::uint64_t, kAnswers> answers{};
  std::uint64_t packets_sent = 0;
};

class Hostile {
 public:
  Hostile(const Options& o, std::uint64_t seed) : o_(o), rng_(seed) {}

  // The packets (Ethernet payloads, or whole frames for kinds that make their own header) of
  // one instance of `kind` to `link`.
  std::vector<Bytes> make(Kind kind, const Link& link, bool& whole_frames) {
    whole_frames = false;
    switch (kind) {
      case kRandom: return {random_bytes(1 + rng_() % 1400)};
      case kRandomControl: {
        Bytes p = random_bytes(4 + rng_() % 200);
        wire::store_le(kControlMagic, p.data());
        return {p};
      }
      case kTruncatedHeader: {
        Bytes p = data_packet(64, 1400);
        p.resize(1 + rng_() % (kDatagramHeaderBytes - 1));
        return {p};
      }
      case kUnknownSessionData: return {data_packet(1 + rng_() % 1400, 1400)};
      case kHugeLength: {
        Bytes p = data_packet(1 + rng_() % 1400, 1400);
        wire::store_le<std::uint32_t>(0xffffffffu, p.data() + kPayloadBytesAt);
        FZ_NET_CHECK(!datagram_session_ids(p).has_value());  // no longer the protocol's layout
        return {p};
      }
      case kHugeSequence: {
        Bytes p = data_packet(1 + rng_() % 1400, 1400);
        wire::store_le<std::uint64_t>(std::uint64_t{1} << 63, p.data() + kSeqAt);
        FZ_NET_CHECK(datagram_session_ids(p).has_value());  // still well-formed
        return {p};
      }
      case kOversizedFragment: return {data_packet(1900, 1900)};
      case kAckNeverSent: {
        Bytes p = ack_packet();
        wire::store_le<std::uint64_t>(std::uint64_t{1} << 40, p.data() + kAckAt);
        FZ_NET_CHECK(datagram_session_ids(p).has_value());
        return {p};
      }
      case kHello: return {control(ControlKind::hello, dialer_hello(link.target))};
      case kConfirmWrongMac: {
        std::vector<Bytes> out{control(ControlKind::hello, dialer_hello(link.target))};
        const Bytes mac = random_bytes(wire::kMacBytes);  // made without the secret
        out.push_back(control(ControlKind::confirm, as_uchar(mac)));
        return out;
      }
      case kHelloWrongCluster: {
        wire::Hello h = hello_fields(link.target);
        h.cluster_id = o_.cluster_id + 1;
        return {control(ControlKind::hello, wire::encode_hello(h))};
      }
      case kHelloClaimsTarget: {
        wire::Hello h = hello_fields(link.target);
        h.sender_id = link.target;
        return {control(ControlKind::hello, wire::encode_hello(h))};
      }
      case kHelloTruncated: {
        Bytes p = control(ControlKind::hello, dialer_hello(link.target));
        p.resize(kControlHeaderBytes + 30);
        return {p};
      }
      case kReplyUnsolicited: {
        wire::Hello h = hello_fields(link.target);
        h.kind = wire::HelloKind::acceptor;
        const wire::HelloBytes hello = wire::encode_hello(h);
        std::vector<unsigned char> body(hello.begin(), hello.end());
        const Bytes mac = random_bytes(wire::kMacBytes);
        const auto m = as_uchar(mac);
        body.insert(body.end(), m.begin(), m.end());
        FZ_NET_CHECK(body.size() == wire::kReplyBytes);
        return {control(ControlKind::reply, body)};
      }
      case kCloseRandom: {
        std::array<unsigned char, 16> body{};
        wire::store_le(random_session(), reinterpret_cast<std::byte*>(body.data()));
        wire::store_le(random_session(), reinterpret_cast<std::byte*>(body.data() + 8));
        return {control(ControlKind::close, body)};
      }
      case kOtherEtherType: {
        static constexpr std::array<std::uint16_t, 3> kTypes{0x0800, 0x86dd, 0x0806};
        Bytes f = random_bytes(kEthernetHeaderBytes + 20 + rng_() % 1400);
        const std::uint16_t type = kTypes[rng_() % kTypes.size()];
        f[12] = static_cast<std::byte>(type >> 8);
        f[13] = static_cast<std::byte>(type & 0xff);
        whole_frames = true;
        return {f};
      }
      case kRunt:
        whole_frames = true;
        return {random_bytes(1 + rng_() % (kEthernetHeaderBytes - 1))};
      case kEmptyPayload: return {Bytes{}};
      case kKinds: break;
    }
    FZ_NET_CHECK(false);
    return {};
  }

 private:
  Bytes random_bytes(std::size_t n) {
    Bytes out(n);
    for (std::byte& b : out) b = static_cast<std::byte>(rng_() & 0xff);
    return out;
  }
  static std::span<const unsigned char> as_uchar(const Bytes& b) {
    return {reinterpret_cast<const unsigned char*>(b.data()), b.size()};
  }
  std::uint64_t random_session() {
    std::uint64_t id = 0;
    while (id == 0) id = rng_();
    return id;
  }

  // The first packet a DatagramSession of random ids (and the given mtu) sends for a frame of
  // `frame_bytes` random bytes: a well-formed data packet no live session owns.
  Bytes data_packet(std::size_t frame_bytes, std::size_t mtu) {
    DatagramSessionConfig c;
    c.mtu_payload = mtu;
    c.window = 4;
    c.send_slots = 4;
    c.max_frame_bytes = 4 * mtu;
    DatagramSession s(c, random_session(), random_session());
    FZ_NET_CHECK(s.send(random_bytes(frame_bytes)));
    Bytes out;
    s.poll(1, [&](std::span<const std::byte> p) {
      if (out.empty()) out.assign(p.begin(), p.end());
    });
    FZ_NET_CHECK(datagram_session_ids(out).has_value());
    return out;
  }
  Bytes ack_packet() {
    DatagramSessionConfig c;
    c.window = 1;
    c.send_slots = 1;
    c.max_frame_bytes = c.mtu_payload;
    DatagramSession s(c, random_session(), random_session());
    s.request_ack();
    Bytes out;
    s.poll(1, [&](std::span<const std::byte> p) { out.assign(p.begin(), p.end()); });
    FZ_NET_CHECK(out.size() == kDatagramHeaderBytes);
    return out;
  }

  wire::Hello hello_fields(std::uint64_t target) {
    wire::Hello h;
    h.kind = wire::HelloKind::dialer;
    h.cluster_id = o_.cluster_id;
    h.sender_id = o_.sender;
    h.target_id = target;
    for (unsigned char& b : h.nonce) b = static_cast<unsigned char>(rng_() & 0xff);
    return h;
  }
  // A dialer's HELLO as the transport's own Handshake makes it (claiming --sender, a random
  // nonce); the secret is not needed for a HELLO.
  wire::HelloBytes dialer_hello(std::uint64_t target) {
    HandshakeContext context;
    context.cluster_id = o_.cluster_id;
    context.self_id = o_.sender;
    context.peers = {target};
    context.make_nonce = [this] {
      wire::Nonce n;
      for (unsigned char& b : n) b = static_cast<unsigned char>(rng_() & 0xff);
      return n;
    };
    Handshake h;
    const HandshakeStep step = h.start_dialer(context, target);
    FZ_NET_CHECK(step.kind == HandshakeStep::Kind::send && step.bytes.size() == wire::kHelloBytes);
    wire::HelloBytes out;
    std::copy(step.bytes.begin(), step.bytes.end(), out.begin());
    return out;
  }

  static Bytes control(ControlKind kind, std::span<const unsigned char> body) {
    Bytes p(kControlHeaderBytes + body.size(), std::byte{0});
    wire::store_le(kControlMagic, p.data());
    p[4] = std::byte{kControlVersion};
    p[5] = static_cast<std::byte>(kind);
    std::memcpy(p.data() + kControlHeaderBytes, body.data(), body.size());
    return p;
  }

  const Options& o_;
  std::mt19937_64 rng_;
};

// What a server sent us.
Answer classify(std::span<const std::byte> frame) {
  if (frame.size() < kEthernetHeaderBytes || frame[12] != static_cast<std::byte>(kEtherType >> 8) ||
      frame[13] != static_cast<std::byte>(kEtherType & 0xff)) {
    return kForeign;
  }
  const auto p = frame.subspan(kEthernetHeaderBytes);
  if (p.size() >= kControlHeaderBytes && wire::load_le<std::uint32_t>(p.data()) == kControlMagic) {
    if (p[5] == static_cast<std::byte>(ControlKind::reply)) return kReply;
    if (p[5] == static_cast<std::byte>(ControlKind::close)) return kClose;
    return kOtherControl;
  }
  return kDatagram;
}

void drain(std::vector<Link>& links) {
  for (Link& l : links) {
    while (l.port->receive([&](std::span<const std::byte> f) { ++l.answers[classify(f)]; }) > 0) {
    }
  }
}

// Flushes `link`'s port until its queue is empty or `until`; true when it emptied.
bool flush_all(Link& link, Clock::time_point until) {
  while (link.port->queued() > 0) {
    link.packets_sent += link.port->flush();
    if (link.port->queued() == 0) break;
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(20));  // the server's ring is full
  }
  return true;
}

std::string json_counts(const char* const* names, const std::uint64_t* counts, std::size_t n) {
  std::string out = "{";
  for (std::size_t i = 0; i < n; ++i) {
    out += (i == 0 ? "\"" : ", \"") + std::string(names[i]) + "\": " + std::to_string(counts[i]);
  }
  return out + "}";
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

int run(const Options& o) {
  const std::uint64_t seed = o.seed ? *o.seed : std::random_device{}() ^ static_cast<std::uint64_t>(::getpid());
  std::vector<std::string> args{"--no-huge", "-m", "256", "--no-pci", "--iova-mode=va",
                                "--file-prefix", o.prefix, "-l", "0", "--no-telemetry",
                                "--log-level=lib.eal:notice"};
  for (std::size_t i = 0; i < o.links.size(); ++i) {
    args.push_back("--vdev=net_memif_hostile" + std::to_string(i) + ",role=client,socket=" +
                   o.links[i] + ",socket-abstract=no,id=0");
  }
  auto eal = Eal::init(args);
  if (!eal) {
    std::fprintf(stderr, "dpdk_hostile_peer: %s\n", eal.error().to_string().c_str());
    return 1;
  }
  // The watchdog: whatever happens, the process ends (and leaves no runtime directory) within
  // the duration and 30 s.
  const std::string runtime_dir = (*eal)->runtime_dir();
  std::thread([runtime_dir, limit = o.duration_ms + 30'000] {
    std::this_thread::sleep_for(std::chrono::milliseconds(limit));
    std::fprintf(stderr, "dpdk_hostile_peer: not done within %llu ms; giving up\n",
                 static_cast<unsigned long long>(limit));
    std::error_code ignored;
    std::filesystem::remove_all(runtime_dir, ignored);
    ::_exit(3);
  }).detach();

  {
    std::vector<Link> links;
    for (std::size_t i = 0; i < o.links.size(); ++i) {
      auto id = (*eal)->port_named("net_memif_hostile" + std::to_string(i));
      if (!id) {
        std::fprintf(stderr, "dpdk_hostile_peer: %s\n", id.error().to_string().c_str());
        return 1;
      }
      PortConfig pc;
      pc.port = *id;
      pc.mbufs = 2047;
      pc.mbuf_cache = 64;
      auto port = Port::open(**eal, pc);
      if (!port) {
        std::fprintf(stderr, "dpdk_hostile_peer: %s\n", port.error().to_string().c_str());
        return 1;
      }
      Link l;
      l.socket = o.links[i];
      l.target = o.target ? *o.target : target_of(o.links[i], o.sender);
      l.port = std::move(*port);
      const Mac own = l.port->mac();
      std::memcpy(l.header.data() + 6, own.data(), own.size());
      l.header[12] = static_cast<std::byte>(kEtherType >> 8);
      l.header[13] = static_cast<std::byte>(kEtherType & 0xff);
      links.push_back(std::move(l));
    }

    // Every link up: a port found down at two checks 100 ms apart is restarted (a memif client
    // connects only when started).
    const Clock::time_point up_deadline = Clock::now() + std::chrono::seconds(10);
    std::vector<int> down(links.size(), 0);
    for (;;) {
      bool all_up = true;
      for (std::size_t i = 0; i < links.size(); ++i) {
        if (links[i].port->link_up()) {
          down[i] = 0;
          continue;
        }
        all_up = false;
        if (++down[i] >= 2) {
          down[i] = 0;
          (void)links[i].port->restart();  // fails while the server's socket is missing: retried
        }
      }
      drain(links);
      if (all_up) break;
      if (Clock::now() >= up_deadline) {
        for (const Link& l : links) {
          if (!l.port->link_up()) {
            std::fprintf(stderr, "dpdk_hostile_peer: the link on %s did not come up within 10 s%s%s\n",
                         l.socket.c_str(), l.port->start_error().empty() ? "" : ": ",
                         l.port->start_error().c_str());
          }
        }
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }

    Hostile hostile(o, seed);
    const Clock::time_point begin = Clock::now();
    const Clock::time_point end = begin + std::chrono::milliseconds(o.duration_ms);
    const Clock::time_point linger_until = end + std::chrono::milliseconds(300);
    std::uint64_t rounds = 0;
    while (Clock::now() < end) {
      for (Link& l : links) {
        auto kind = static_cast<Kind>(l.next_kind++ % kKinds);
        while (!o.kinds[kind]) kind = static_cast<Kind>(l.next_kind++ % kKinds);
        bool whole = false;
        const std::vector<Bytes> packets = hostile.make(kind, l, whole);
        bool queued = true;
        for (const Bytes& p : packets) {
          queued = queued && (whole ? l.port->queue(p) : l.port->queue(l.header, p));
        }
        // One kind at a time, so that each count is exact: what the TX queue took, all of it.
        if (queued && flush_all(l, linger_until)) {
          ++l.sent[kind];
        } else {
          ++l.unsent[kind];
        }
      }
      drain(links);
      ++rounds;
      if (o.pps > 0) {  // on schedule: sleep until this round's time (a late round does not)
        std::this_thread::sleep_until(
            begin + std::chrono::microseconds(rounds * 1'000'000 / o.pps));
      }
    }
    const double seconds =
        std::chrono::duration<double>(Clock::now() - begin).count();
    // Linger: the servers read what is left in the rings (and we read their answers).
    while (Clock::now() < linger_until) {
      for (Link& l : links) l.packets_sent += l.port->flush();
      drain(links);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }

    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    const double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                       static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    std::printf("%llu rounds in %.2f s (%s), %.2f s of CPU in all\n",
                static_cast<unsigned long long>(rounds), seconds,
                o.pps == 0 ? "flat out" : ("paced at " + std::to_string(o.pps) + " a second").c_str(),
                cpu);
    std::string json = "{\"seconds\": " + std::to_string(seconds) + ", \"cpu_seconds\": " +
                       std::to_string(cpu) + ", \"rounds\": " +
                       std::to_string(rounds) + ", \"seed\": " + std::to_string(seed) +
                       ", \"links\": [";
    for (std::size_t i = 0; i < links.size(); ++i) {
      const Link& l = links[i];
      std::printf("link %s (server %llu): %llu packets in %.2f s\n", l.socket.c_str(),
                  static_cast<unsigned long long>(l.target),
                  static_cast<unsigned long long>(l.packets_sent), seconds);
      for (std::size_t k = 0; k < kKinds; ++k) {
        std::printf("  sent %-22s %8llu%s\n", kKindNames[k], static_cast<unsigned long long>(l.sent[k]),
                    l.unsent[k] == 0 ? "" : (" (" + std::to_string(l.unsent[k]) + " not taken by the TX queue)").c_str());
      }
      for (std::size_t a = 0; a < kAnswers; ++a) {
        std::printf("  received %-18s %8llu\n", kAnswerNames[a], static_cast<unsigned long long>(l.answers[a]));
      }
      json += (i == 0 ? "{" : ", {") + std::string("\"socket\": ") + json_string(l.socket) +
              ", \"target\": " + std::to_string(l.target) + ", \"packets\": " +
              std::to_string(l.packets_sent) + ", \"sent\": " +
              json_counts(kKindNames.data(), l.sent.data(), kKinds) + ", \"unsent\": " +
              json_counts(kKindNames.data(), l.unsent.data(), kKinds) + ", \"received\": " +
              json_counts(kAnswerNames.data(), l.answers.data(), kAnswers) + "}";
    }
    std::printf("result %s]}\n", json.c_str());
    std::fflush(stdout);
  }  // the ports close here, before the EAL
  eal->reset();  // removes the runtime directory
  return 0;
}

}  // namespace
}  // namespace fastzab::net::dpdk

int main(int argc, char** argv) {
  const auto options = fastzab::net::dpdk::parse(argc, argv);
  return fastzab::net::dpdk::run(options);
}
