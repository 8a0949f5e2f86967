// Log options of the crash test, shared by the child and the checking parent.
#include "log/log.h"

using namespace fastzab::log;

Options crash_options(WriterKind writer) {
  Options o;
  o.cluster_id = 77;
  o.segment_bytes = 64 << 10;
  o.max_record_bytes = 3000;
  o.max_batch_bytes = 8 << 10;
  o.max_inflight_batches = 4;
  o.writer = writer;
  return o;
}

