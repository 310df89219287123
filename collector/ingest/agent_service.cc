#include "collector/ingest/agent_service.h"

#include <unistd.h>

#include <algorithm>
#include <mutex>

#include "absl/strings/str_cat.h"
// Seen before any read of an AgentMessage is instantiated below: the
// parse-cost check and the in-flight budget.
#include "collector/ingest/agent_message_traits.h"
#include "collector/ingest/validation.h"
#include "common/grpc_status.h"
#include "common/process_setup.h"
#include "common/proto_time.h"
#include "common/version.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/grpcpp.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

// Readers of agents' streams run kReaderNice steps below the main thread (an
// unprivileged process may lower its threads' priority, never raise it): when
// the machine is short of CPU, the threads that commit and analyse what was
// read go first, and the readers, with their bytes unparsed,
// wait in the in-flight budget. Measured before this, at a thousand agents
// on two cores (tests/bench/ingest.sh): the analysis thread waited for a
// CPU 53 % of the time and ran 33 %, its queue stayed full, and a thousand
// readers, parsing what then waited for it, took the CPU. The threads are
// the agent server's own (a sync server's pool; the query and enrolment
// servers have theirs), so nothing else runs at this priority.
constexpr int kReaderNice = 5;  // about a third of the CPU share

void YieldToWhatFinishesWork() {
  thread_local bool lowered = false;
  if (lowered) return;
  lowered = true;
  LowerThisThreadsPriority(kReaderNice);
}

// The same, naming the agent: the status is all a refused agent sees.
grpc::Status Refuse(const std::string& agent, const absl::Status& s) {
  return ToGrpcStatus(s, absl::StrCat("agent '", agent, "': ", s.message()));
}

// A message that fails to parse (a proto3 string that is not UTF-8) ends
// gRPC's Read() exactly as the end of the stream does; protobuf tells why
// only through its log. The sync server parses on the thread that called
// Read(), so a thread-local slot set around the read loop catches the
// reason for that stream. Other protobuf log lines go to our log.
thread_local std::string* parse_error_slot = nullptr;

void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line,
                 const std::string& message) {
  if (parse_error_slot != nullptr && parse_error_slot->empty()) {
    *parse_error_slot = message;
    return;
  }
  spdlog::warn("protobuf_log level={} at={}:{} message=\"{}\"",
               static_cast<int>(level), file, line, message);
}

// "String field 'netvigil.v1.Hello.agent_name' contains invalid UTF-8
// data ..." -> the reason in our words.
std::string ParseFailure(const std::string& logged) {
  const size_t a = logged.find('\'');
  const size_t b = a == std::string::npos ? a : logged.find('\'', a + 1);
  if (logged.find("UTF-8") != std::string::npos && b != std::string::npos) {
    return absl::StrCat(logged.substr(a + 1, b - a - 1), ": not valid UTF-8");
  }
  return "a message could not be parsed";
}

// Liveness and timeouts run on this, not the wall clock.
absl::Time Mono(Clock& c) { return c.MonotonicNow(); }

}  // namespace

AgentService::AgentService(AgentServiceOptions options, Store& store,
                           Clock& clock, SessionRegistry& sessions)
    : options_(std::move(options)),
      store_(store),
      clock_(clock),
      sessions_(sessions),
      pipeline_(options_.ingest, store),
      reaper_([this] { ReapLoop(); }) {
  static std::once_flag once;
  std::call_once(once, [] { google::protobuf::SetLogHandler(&ProtobufLog); });
}

AgentService::~AgentService() {
  stop_.Notify();
  reaper_.join();
}

void AgentService::ReapLoop() {
  // A killed host's TCP connection can stay open for minutes; the heartbeat
  // timeout is what frees its name and marks it offline.
  // The wait itself is a relative sleep (nanosleep runs on the monotonic
  // clock): this Abseil turns timed waits into CLOCK_REALTIME deadlines,
  // which a clock stepped back would stretch by the step.
  while (!stop_.HasBeenNotified()) {
    clock_.SleepFor(absl::Milliseconds(250));
    int n = sessions_.CancelSilent(Mono(clock_), options_.heartbeat_timeout);
    if (n > 0)
      spdlog::info("sessions_cancelled reason=heartbeat_timeout n={}", n);
  }
}

absl::StatusOr<std::string> AgentService::Identity(grpc::ServerContext* ctx,
                                                   const v1::Hello& hello,
                                                   std::string* serial) {
  auto auth = ctx->auth_context();
  if (auth && auth->IsPeerAuthenticated()) {
    auto cn = auth->FindPropertyValues("x509_common_name");
    if (cn.empty()) {
      return absl::PermissionDeniedError(
          "the client certificate has no common name");
    }
    std::string name(cn[0].data(), cn[0].size());
    if (!hello.agent_name().empty() && hello.agent_name() != name) {
      return absl::PermissionDeniedError(
          absl::StrCat("hello names agent '", hello.agent_name(),
                       "' but the certificate is for '", name, "'"));
    }
    if (options_.certs != nullptr) {
      // The CA signed it, but is it an agent's, and still good? Checked on
      // every stream start, so a revoked agent cannot come back.
      auto pem = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
      if (pem.empty()) {
        return absl::PermissionDeniedError("no client certificate to check");
      }
      absl::StatusOr<pki::CertInfo> cert =
          pki::ParseCert(absl::string_view(pem[0].data(), pem[0].size()));
      if (!cert.ok())
        return absl::PermissionDeniedError(cert.status().message());
      if (cert->role != pki::kRoleAgent) {
        return absl::PermissionDeniedError(
            absl::StrCat("a certificate for role '", cert->role,
                         "' cannot stream as an agent"));
      }
      absl::Status s = options_.certs->CheckCertificate(cert->serial_hex,
                                                        pki::kRoleAgent, name);
      if (absl::IsPermissionDenied(s)) return s;
      if (!s.ok()) {
        return absl::UnavailableError(absl::StrCat(
            "collector database unavailable: cannot check the certificate: ",
            s.message()));
      }
      *serial = cert->serial_hex;
    }
    return name;
  }
  if (!options_.insecure) {
    return absl::UnauthenticatedError(
        "a client certificate is required (the collector is not --insecure)");
  }
  return hello.agent_name();
}

grpc::Status AgentService::Stream(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::CollectorMessage, v1::AgentMessage>* stream) {
  YieldToWhatFinishesWork();
  const std::string peer = ctx->peer();
  std::string parse_error;
  parse_error_slot = &parse_error;
  struct ClearSlot {
    ~ClearSlot() { parse_error_slot = nullptr; }
  } clear_slot;
  // What this thread's reads parse is reserved in the ingest budget first
  // (agent_message_traits.h); the context is this stream's until it ends.
  AgentReadContext read;
  read.budget = pipeline_.budget();
  read.agent = peer;  // until the hello names the agent
  read.give_up = [ctx] { return ctx->IsCancelled(); };
  CurrentAgentRead() = &read;
  struct ClearRead {
    ~ClearRead() { CurrentAgentRead() = nullptr; }
  } clear_read;
  v1::AgentMessage msg;
  if (!stream->Read(&msg)) {
    if (!read.refused.ok()) {
      spdlog::warn("agent_refused peer={} reason=message detail=\"{}\"", peer,
                   std::string(read.refused.message()));
      return ToGrpcStatus(read.refused);
    }
    if (!parse_error.empty()) {
      const std::string why = ParseFailure(parse_error);
      spdlog::warn(
          "agent_refused peer={} reason=unparsable_hello detail=\"{}\"", peer,
          why);
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("peer ", peer, ": ", why));
    }
    return grpc::Status(grpc::StatusCode::CANCELLED,
                        "stream closed before hello");
  }
  if (!msg.has_hello()) {
    spdlog::warn("agent_refused peer={} reason=first_message_not_hello", peer);
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the first message must be a hello");
  }
  v1::Hello hello = msg.hello();
  if (absl::Status s = ValidateHello(hello, DefaultLimits()); !s.ok()) {
    spdlog::warn("agent_refused peer={} reason=invalid_hello detail=\"{}\"",
                 peer, std::string(s.message()));
    return ToGrpcStatus(s);
  }
  std::string cert_serial;
  absl::StatusOr<std::string> name = Identity(ctx, hello, &cert_serial);
  if (!name.ok()) {
    spdlog::warn("agent_refused peer={} reason=identity detail=\"{}\"", peer,
                 std::string(name.status().message()));
    return ToGrpcStatus(name.status());
  }
  hello.set_agent_name(*name);

  // The agent's own plan and iperf3 credentials (which may take a moment
  // the first time: a new RSA key), before its session is visible to what
  // sends to sessions (plan updates, commands): the welcome must come first.
  v1::Welcome completed;
  *completed.mutable_plan() = options_.plan;
  if (options_.complete_welcome) {
    absl::Status s = options_.complete_welcome(*name, &completed);
    if (!s.ok()) {
      spdlog::warn("agent_refused name={} peer={} reason=welcome error=\"{}\"",
                   *name, peer, std::string(s.message()));
      return ToGrpcStatus(s);
    }
  }

  const std::string session_id =
      absl::StrCat(getpid(), "-", absl::ToUnixMillis(clock_.Now()), "-",
                   next_session_.fetch_add(1));
  auto session = std::make_shared<AgentSession>(
      *name, session_id, peer,
      [stream](const v1::CollectorMessage& m) { return stream->Write(m); },
      [ctx] { ctx->TryCancel(); }, Mono(clock_));
  session->set_cert_serial(cert_serial);
  if (absl::Status s =
          sessions_.Claim(session, Mono(clock_), options_.heartbeat_timeout);
      !s.ok()) {
    spdlog::warn("agent_refused name={} peer={} reason=already_connected",
                 *name, peer);
    return ToGrpcStatus(s);
  }
  auto release = [&] {
    session->Close();  // the stream object goes when Stream() returns
    sessions_.Release(*session);
    absl::Status s = store_.AgentDisconnected(*name, session_id, clock_.Now());
    if (!s.ok()) {
      spdlog::warn("agent_disconnect_not_recorded name={} error=\"{}\"", *name,
                   std::string(s.message()));
    }
  };

  absl::StatusOr<uint64_t> acked =
      store_.AgentConnected(hello, session_id, clock_.Now());
  if (!acked.ok()) {
    sessions_.Release(*session);
    spdlog::warn("agent_refused name={} peer={} reason=database error=\"{}\"",
                 *name, peer, std::string(acked.status().message()));
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat("collector database unavailable: ",
                                     acked.status().message()));
  }
  SenderContext sender;
  sender.agent = *name;
  sender.speed_enabled = completed.plan().speed().enabled();
  sender.highest_seq = hello.next_seq() > 0 ? hello.next_seq() - 1 : 0;
  v1::CollectorMessage welcome;
  welcome.mutable_welcome()->set_collector_version(kVersion);
  *welcome.mutable_welcome()->mutable_plan() =
      std::move(*completed.mutable_plan());
  if (completed.has_iperf_auth()) {
    *welcome.mutable_welcome()->mutable_iperf_auth() =
        std::move(*completed.mutable_iperf_auth());
  }
  welcome.mutable_welcome()->set_acked_through_seq(*acked);
  welcome.mutable_welcome()->set_agent_name(*name);
  if (!session->Send(welcome)) {
    release();
    return grpc::Status(grpc::StatusCode::CANCELLED, "stream closed");
  }
  spdlog::info(
      "agent_connected name={} peer={} version={} session={} "
      "acked_through={}",
      *name, peer, hello.version(), session_id, *acked);

  grpc::Status result = grpc::Status::OK;
  uint64_t refused_commands = 0;  // as the agent's last heartbeat counted
  uint64_t refused = 0, retimed = 0;
  read.agent = *name;
  // A stream waiting for memory is held back, not silent.
  read.give_up = [&] {
    session->Touch(Mono(clock_));
    return ctx->IsCancelled();
  };
  // Only what protobuf logs while parsing the next message counts.
  auto read_next = [&] {
    parse_error.clear();
    return stream->Read(&msg);
  };
  while (read_next()) {
    session->Touch(Mono(clock_));
    // Goes with the result into the pipeline; anything else releases it at
    // the end of this turn.
    std::shared_ptr<InflightBudget::Reservation> reservation =
        std::move(read.reservation);
    switch (msg.msg_case()) {
      case v1::AgentMessage::kHeartbeat: {
        const absl::Time receipt = clock_.Now();
        absl::Status s = store_.AgentSeen(*name, session_id, receipt);
        if (!s.ok()) {
          spdlog::warn("heartbeat_not_recorded name={} error=\"{}\"", *name,
                       std::string(s.message()));
        }
        if (msg.heartbeat().has_sent_at() &&
            ValidateHeartbeat(msg.heartbeat(), DefaultLimits()).ok()) {
          const absl::Duration offset =
              FromProtoTime(msg.heartbeat().sent_at()) - receipt;
          absl::Duration before;
          const bool had = session->clock_offset(&before);
          session->set_clock_offset(offset);
          if (!had || absl::AbsDuration(offset - before) > absl::Seconds(5)) {
            spdlog::info("agent_clock name={} offset_ms={}", *name,
                         absl::ToInt64Milliseconds(offset));
          }
          if (options_.on_clock_offset) options_.on_clock_offset(*name, offset);
        }
        // Commands the agent refused (it logs each with its reason): worth a
        // line here too, since this collector (or one speaking as it) sent
        // them.
        if (msg.heartbeat().refused_commands() > refused_commands) {
          refused_commands = msg.heartbeat().refused_commands();
          spdlog::warn("agent_refused_commands name={} total={}", *name,
                       refused_commands);
        }
        break;
      }
      case v1::AgentMessage::kResult: {
        v1::Result r = std::move(*msg.mutable_result());
        const absl::Time receipt = clock_.Now();
        if (r.seq() == 0 || r.seq() > kMaxSeq) {
          // Not a number an ack can carry past: nothing to move on from.
          const absl::Status bad = absl::InvalidArgumentError(
              absl::StrCat("result.seq: ", r.seq(), " outside 1..", kMaxSeq));
          spdlog::warn(
              "result_refused name={} seq={} error=\"{}\" stream=ended", *name,
              r.seq(), std::string(bad.message()));
          result = Refuse(*name, bad);
          break;
        }
        absl::Duration offset;
        if (!session->clock_offset(&offset)) offset = absl::ZeroDuration();
        const absl::Duration moved =
            NormaliseResultTimes(&r, receipt, offset, DefaultLimits());
        if (moved != absl::ZeroDuration() && retimed++ % 100 == 0) {
          // One line for the first and every hundredth: a wrong clock would
          // otherwise write one per result.
          spdlog::warn(
              "result_time_replaced name={} seq={} moved_s={} total={} "
              "detail=\"produced_at outside the believable window: judged "
              "by receipt time\"",
              *name, r.seq(),
              moved == absl::InfiniteDuration()
                  ? std::string("missing")
                  : std::to_string(absl::ToInt64Seconds(moved)),
              retimed);
        }
        absl::Status valid =
            ValidateResult(r, absl::ToUnixSeconds(receipt), DefaultLimits());
        if (valid.ok()) valid = CheckBinding(r, sender);
        sender.highest_seq = std::max(sender.highest_seq, r.seq());
        if (!valid.ok()) {
          // Refused for good: the same bytes would be refused again. A gap
          // record takes its number, so the agent's sequence moves on and
          // the loss is on record (and in the results_lost alert).
          ++refused;
          const std::string reason = absl::StrCat("refused: ", valid.message());
          spdlog::warn("result_refused name={} seq={} error=\"{}\" total={}",
                       *name, r.seq(), std::string(valid.message()), refused);
          v1::Result gap;
          gap.set_seq(r.seq());
          *gap.mutable_produced_at() = ToProtoTime(receipt);
          gap.mutable_gap()->set_first_seq(r.seq());
          gap.mutable_gap()->set_last_seq(r.seq());
          gap.mutable_gap()->set_count(1);
          gap.mutable_gap()->set_reason(reason);
          *gap.mutable_gap()->mutable_first_produced_at() =
              ToProtoTime(receipt);
          *gap.mutable_gap()->mutable_last_produced_at() = ToProtoTime(receipt);
          v1::CollectorMessage notice;
          notice.mutable_ack()->set_refused_seq(r.seq());
          notice.mutable_ack()->set_refused_reason(reason);
          session->Send(notice);
          r = std::move(gap);
        }
        // Acknowledged by the pipeline once committed; waits here while
        // the pipeline is full.
        // A stream held back by a full pipeline is not a silent agent.
        // Moved, not copied: a large snapshot is in memory once (its bytes
        // count against the pipeline's in-flight budget until released).
        if (!pipeline_.Submit(
                session, std::move(r),
                [&] {
                  session->Touch(Mono(clock_));
                  return ctx->IsCancelled();
                },
                std::move(reservation))) {
          result = grpc::Status(grpc::StatusCode::CANCELLED,
                                "stream ended while waiting to store a result");
        }
        break;
      }
      case v1::AgentMessage::kCommandStatus:
        for (auto& observe : status_observers_) {
          observe(*name, msg.command_status());
        }
        break;
      case v1::AgentMessage::kHello:
        result = Refuse(*name, absl::InvalidArgumentError(
                                   "hello sent twice on one stream"));
        break;
      case v1::AgentMessage::MSG_NOT_SET:
        result =
            Refuse(*name, absl::InvalidArgumentError("empty agent message"));
        break;
    }
    if (!result.ok()) break;
  }
  if (result.ok() && absl::IsCancelled(read.refused)) {
    // The agent went away while its message waited for memory.
    result = grpc::Status(grpc::StatusCode::CANCELLED,
                          std::string(read.refused.message()));
  } else if (result.ok() && !read.refused.ok()) {
    // Refused before parsing (what it would cost): say so to the agent and
    // in the log, rather than ending the stream as if all were well.
    const absl::Status& s = read.refused;
    spdlog::warn("message_refused name={} peer={} reason=\"{}\"", *name, peer,
                 std::string(s.message()));
    result = ToGrpcStatus(
        s, absl::StrCat("a message from agent '", *name,
                        "' was refused before parsing: ", s.message()));
  } else if (result.ok() && !parse_error.empty()) {
    const std::string why = ParseFailure(parse_error);
    spdlog::warn(
        "agent_refused name={} peer={} reason=unparsable detail=\"{}\"", *name,
        peer, why);
    result = Refuse(*name, absl::InvalidArgumentError(why));
  }
  release();
  spdlog::info("agent_disconnected name={} peer={} session={} status=\"{}\"",
               *name, peer, session_id,
               result.ok() ? "ok" : result.error_message());
  return result;
}

}  // namespace netvigil::collector
