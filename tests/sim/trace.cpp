#include "trace.h"

#include <variant>

#include "checkers.h"

namespace fastzab::sim {

namespace {
std::string sid(core::ServerId s) {
  return s == core::kNoServer ? "none" : "s" + std::to_string(s.value);
}
std::string ep(core::Epoch e) {
  return e == core::kNoEpoch ? "none" : std::to_string(e.value);
}
}  // namespace

std::string describe_frame(core::Bytes frame) {
  const auto f = core::decode_frame(frame);
  if (!f) return std::string("<bad frame: ") + core::to_string(f.error()) + ">";
  if (f->kind == core::FrameKind::notification) {
    const core::Notification& n = f->notification;
    return std::string("NOTIFY(") + core::to_string(n.state) + " leader=" + sid(n.leader) +
           " zxid=" + zxid_str(n.zxid) + " round=" + std::to_string(n.round) +
           " peerEpoch=" + ep(n.peer_epoch) + ")";
  }
  const core::QuorumPacket& p = f->packet;
  std::string s = std::string(core::to_string(p.type)) + "(" + zxid_str(p.zxid);
  if (p.type == core::PacketType::proposal || p.type == core::PacketType::inform) {
    if (const auto b = core::decode_batch(p.data)) s += " x" + std::to_string(b->size());
  } else if (p.type == core::PacketType::ackepoch) {
    if (const auto a = core::decode_ackepoch(p.data)) {
      s += " current=" + std::to_string(a->current_epoch) + " applied=" + zxid_str(a->applied) +
           " answers=" + std::to_string(a->answered_epoch);
    }
  } else if (!p.data.empty()) {
    s += " " + std::to_string(p.data.size()) + "B";
  }
  return s + ")";
}

std::string describe_input(const core::Input& in) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, core::input::Message>) {
          return "recv " + describe_frame(v.frame) + " from " + sid(v.from) + " #" +
                 std::to_string(v.session.value);
        } else if constexpr (std::is_same_v<T, core::input::Tick>) {
          return "tick";
        } else if constexpr (std::is_same_v<T, core::input::LogDurable>) {
          return "log_durable " + zxid_str(v.zxid);
        } else if constexpr (std::is_same_v<T, core::input::EpochsDurable>) {
          return "epochs_durable " + ep(v.accepted) + "/" + ep(v.current);
        } else if constexpr (std::is_same_v<T, core::input::SnapshotInstalled>) {
          return "snapshot_installed " + zxid_str(v.zxid);
        } else if constexpr (std::is_same_v<T, core::input::ClientProposals>) {
          return "client x" + std::to_string(v.proposals.size());
        } else if constexpr (std::is_same_v<T, core::input::SessionUp>) {
          return "session_up " + sid(v.peer) + " #" + std::to_string(v.session.value);
        } else if constexpr (std::is_same_v<T, core::input::TransferLeadership>) {
          return "transfer_leadership to " + sid(v.target) + " tag " + std::to_string(v.tag);
        } else {
          return "session_down " + sid(v.peer) + " #" + std::to_string(v.session.value);
        }
      },
      in);
}

std::string describe_output(const core::Outputs& outs, const core::Output& o) {
  std::string s = core::to_string(o.kind);
  switch (o.kind) {
    case core::OutputKind::send:
    case core::OutputKind::send_after_durable:
      s += " " + sid(o.peer) + " #" + std::to_string(o.session.value) + " " +
           describe_frame(outs.bytes(o));
      if (o.kind == core::OutputKind::send_after_durable) {
        s += " [log>=" + zxid_str(o.barrier.log_zxid) + " acc>=" + ep(o.barrier.accepted) +
             " cur>=" + ep(o.barrier.current) + "]";
      }
      break;
    case core::OutputKind::close_session:
      s += " " + sid(o.peer) + " #" + std::to_string(o.session.value);
      if (o.cause != core::Cause::none) s += std::string(": ") + core::to_string(o.cause);
      break;
    case core::OutputKind::append:
    case core::OutputKind::deliver:
      s += " " + zxid_str(o.zxid) + " x" + std::to_string(o.count);
      break;
    case core::OutputKind::truncate:
    case core::OutputKind::install_snapshot:
      s += " " + zxid_str(o.zxid);
      break;
    case core::OutputKind::send_snapshot:
      s += " " + sid(o.peer) + " #" + std::to_string(o.session.value) + " at " + zxid_str(o.zxid);
      break;
    case core::OutputKind::persist_epochs:
      s += " " + ep(o.accepted) + "/" + ep(o.current);
      break;
    case core::OutputKind::role_change:
      s += std::string(" ") + core::to_string(o.role) + " leader=" + sid(o.leader) +
           " epoch=" + ep(o.accepted) + (o.established ? " ESTABLISHED" : "");
      if (o.cause != core::Cause::none) s += std::string(": ") + core::to_string(o.cause);
      break;
    case core::OutputKind::transfer_result:
      s += " tag " + std::to_string(o.tag) + " to " + sid(o.leader) + ": " +
           core::to_string(o.transfer);
      break;
    case core::OutputKind::proposal_accepted:
      s += " tag " + std::to_string(o.tag) + " at " + zxid_str(o.zxid);
      break;
    case core::OutputKind::write_done:
      s += " tag " + std::to_string(o.tag) + ": " + core::to_string(o.outcome);
      if (o.outcome == core::WriteOutcome::committed) s += " at " + zxid_str(o.zxid);
      if (refused(o.outcome)) s += std::string(" (") + core::to_string(o.reason) + ")";
      break;
  }
  return s;
}

}  // namespace fastzab::sim
