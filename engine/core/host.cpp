#include "host.h"

#include <utility>
#include <variant>

#include "invariant.h"

namespace fastzab::core {

Host::Host(NodeConfig config, DurableState state, Effects& effects)
    : node_(std::move(config), std::move(state)), fx_(effects) {}

void Host::step(const Input& in) {
  if (!fx_.healthy()) return;
  outs_.clear();
  node_.step(in, outs_);
  durable_ = node_.durable();
  fx_.stepped(in);
  if (std::holds_alternative<input::LogDurable>(in) ||
      std::holds_alternative<input::EpochsDurable>(in) ||
      std::holds_alternative<input::SnapshotInstalled>(in)) {
    // What waited for this completion leaves before the node's answer to it (FIFO).
    gate_.release(durable_, [this](ServerId peer, SessionId session, Bytes frame) {
      fx_.send(peer, session, frame);
    });
  }
  for (const Output& o : outs_.items) {
    if (!fx_.healthy()) return;
    carry_out(o);
  }
}

void Host::carry_out(const Output& o) {
  const auto send = [this](ServerId peer, SessionId session, Bytes frame) {
    fx_.send(peer, session, frame);
  };
  const Bytes bytes = outs_.bytes(o);
  switch (o.kind) {
    case OutputKind::send:
      return gate_.on_output(outs_, o, durable_, send);
    case OutputKind::send_after_durable: {
      const DurableBarrier b = fx_.held_barrier(o, bytes);
      if (b.log_zxid != o.barrier.log_zxid || b.accepted != o.barrier.accepted ||
          b.current != o.barrier.current) [[unlikely]] {
        Output weakened = o;
        weakened.barrier = b;
        return gate_.on_output(outs_, weakened, durable_, send);
      }
      return gate_.on_output(outs_, o, durable_, send);
    }
    case OutputKind::close_session:
      return fx_.close_session(o.peer, o.session, o.cause);
    case OutputKind::append:
      return fx_.append(o.zxid, node_.entries(o));
    case OutputKind::deliver:
      return fx_.apply(o.zxid, node_.entries(o));
    case OutputKind::truncate:
      return fx_.truncate(o.zxid);
    case OutputKind::persist_epochs:
      return fx_.persist_epochs(o.accepted, o.current);
    case OutputKind::install_snapshot: {
      const auto parts = split_snapshot(bytes);  // checked when the SNAP arrived
      FASTZAB_ASSERT(parts.has_value());
      return fx_.install_snapshot(o.zxid, bytes, parts->app_state);
    }
    case OutputKind::send_snapshot:
      state_.clear();
      fx_.snapshot_state(o.zxid, state_);
      if (!fx_.healthy()) return;
      return gate_.send_snapshot(o, bytes, Bytes(state_), durable_, send);
    case OutputKind::role_change:
      return fx_.role_change(o);
    case OutputKind::proposal_accepted:
      return fx_.proposal_accepted(o.tag, o.zxid);
    case OutputKind::write_done:
      return fx_.write_done(o);
    case OutputKind::transfer_result:
      return fx_.transfer_result(o);
  }
}

}  // namespace fastzab::core
