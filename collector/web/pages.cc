#include "collector/web/pages.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/escape.h"
#include "common/proto_time.h"
#include "common/wire_kinds.h"

namespace netvigil::collector::web {
namespace {

// Drawing area of a timeline, in SVG user units (the SVG scales to the
// page's width).
constexpr double kW = 900, kH = 160, kLeft = 60, kTop = 10, kBottom = 24;
// Above this many runs a timeline draws buckets, not points: a point per
// two pixels is all a person can see, and a page of 5 x 1,440 linked
// points took Chromium 8 s to paint (tests/bench/web_bench.sh).
constexpr size_t kMaxPoints = 500;
constexpr size_t kBuckets = 450;
// Rows shown in an events table; the rest are counted, not listed.
constexpr size_t kMaxRows = 500;

std::string Url(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

std::string Time(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::UnixEpoch()) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
}

std::string TimeOf(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  return Time(FromProtoTime(t));
}

bool Set(const google::protobuf::Timestamp& t) {
  return t.seconds() != 0 || t.nanos() != 0;
}

std::string Bps(double bps) {
  if (bps >= 1e9) return absl::StrFormat("%.2f Gbit/s", bps / 1e9);
  if (bps >= 1e6) return absl::StrFormat("%.1f Mbit/s", bps / 1e6);
  if (bps >= 1e3) return absl::StrFormat("%.1f kbit/s", bps / 1e3);
  return absl::StrFormat("%.0f bit/s", bps);
}

std::string Severity(v1::Severity s) {
  switch (s) {
    case v1::SEVERITY_CRITICAL:
      return "critical";
    case v1::SEVERITY_WARNING:
      return "warning";
    case v1::SEVERITY_INFO:
      return "info";
    default:
      return "unspecified";
  }
}

std::string Scope(v1::AlertScope s) {
  switch (s) {
    case v1::ALERT_SCOPE_HOST:
      return "host";
    case v1::ALERT_SCOPE_PAIR:
      return "pair";
    case v1::ALERT_SCOPE_LAN:
      return "lan";
    case v1::ALERT_SCOPE_UPSTREAM:
      return "upstream";
    case v1::ALERT_SCOPE_MULTI_HOST:
      return "multi-host";
    default:
      return "-";
  }
}

std::string Hosts(const v1::Alert& a) {
  std::vector<std::string> h;
  for (const auto& x : a.hosts()) h.push_back(Text(x));
  return absl::StrJoin(h, ", ");
}

// Maps a time range onto the drawing's x axis.
struct Axis {
  absl::Time since, until;
  double X(absl::Time t) const {
    const double span = absl::ToDoubleSeconds(until - since);
    const double f = span > 0 ? absl::ToDoubleSeconds(t - since) / span : 0;
    return kLeft + std::clamp(f, 0.0, 1.0) * (kW - kLeft);
  }
};

// Tick labels on the time axis: five, formatted to the range.
std::string TimeTicks(const Axis& ax, double y) {
  std::string out;
  const absl::Duration span = ax.until - ax.since;
  const char* fmt = span <= absl::Hours(30)        ? "%H:%M"
                    : span <= absl::Hours(24 * 60) ? "%m-%d"
                                                   : "%Y-%m";
  for (int i = 0; i <= 4; ++i) {
    const absl::Time t = ax.since + span * i / 4;
    absl::StrAppendFormat(
        &out, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\">%s</text>", ax.X(t),
        y, absl::FormatTime(fmt, t, absl::UTCTimeZone()));
  }
  return out;
}

std::string RangeLinks(absl::string_view base, absl::string_view current) {
  std::string out = "<nav class=\"ranges\">range:";
  for (const auto& [name, d] : Ranges()) {
    if (name == current) {
      absl::StrAppend(&out, " <b>", name, "</b>");
    } else {
      absl::StrAppend(&out, " <a href=\"", base, "range=", name, "\">", name,
                      "</a>");
    }
  }
  return out + "</nav>";
}

std::string LossClass(double loss) {
  if (loss <= 0) return "loss0";
  if (loss < 5) return "loss1";
  if (loss < 20) return "loss2";
  if (loss < 100) return "loss3";
  return "loss4";
}

// A figure to one decimal, without a trailing ".0" ("12", "12.5", "-3").
std::string Num(double v) {
  std::string s = absl::StrFormat("%.1f", v);
  if (absl::EndsWith(s, ".0")) s.resize(s.size() - 2);
  if (s == "-0") s = "0";
  return s;
}

// The figures a timeline draws for one run: the destination's, else the
// last hop's (a run that did not reach it).
const v1::PathHop* EndHop(const v1::PathRun& run) {
  if (run.has_destination() && run.destination().sent() > 0) {
    return &run.destination();
  }
  if (!run.hops().empty()) return &run.hops(run.hops_size() - 1);
  return nullptr;
}

// The aggregate of a history point whose resolution is HOURLY or coarser;
// null for a raw point (its figures are in the run or the result).
template <typename P>
auto AggregateOf(const P& point) -> decltype(&point.aggregate()) {
  if (point.resolution() <= v1::RESOLUTION_RAW || !point.has_aggregate()) {
    return nullptr;
  }
  return &point.aggregate();
}

struct Point {
  absl::Time at;
  double avg = 0, best = 0, worst = 0, loss = 100;
  bool answered = false;
  uint64_t seq = 0;   // 0: an aggregate (no run to show)
  absl::Time seq_at;  // that run's start (a bucket's differs from `at`)
  size_t runs = 1;
  bool aggregate = false;
};

std::string MtrTable(const v1::PathRun& run) {
  std::string out =
      "<table class=\"mtr\"><tr><th>#</th><th>Host</th><th>Loss%</th>"
      "<th>Snt</th><th>Last</th><th>Avg</th><th>Best</th><th>Wrst</th>"
      "<th>StDev</th></tr>";
  for (const auto& h : run.hops()) {
    std::vector<std::string> names;
    for (const auto& a : h.addresses()) {
      names.push_back(
          Text(a.hostname().empty()
                   ? a.address()
                   : absl::StrCat(a.hostname(), " (", a.address(), ")")));
    }
    absl::StrAppendFormat(
        &out,
        "<tr><td>%d</td><td>%s</td><td>%.1f</td><td>%d</td><td>%.1f</td>"
        "<td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td></tr>",
        h.ttl(), names.empty() ? "???" : absl::StrJoin(names, "<br>"),
        h.loss_percent(), h.sent(), h.last_ms(), h.avg_ms(), h.best_ms(),
        h.worst_ms(), h.stdev_ms());
  }
  out += "</table>";
  if (!run.error().empty()) {
    absl::StrAppend(&out, "<p class=\"error\">error: ", Text(run.error()),
                    "</p>");
  }
  return out;
}

std::string AlertMarks(const Axis& ax, const v1::ListAlertsResponse& alerts,
                       absl::string_view target) {
  std::string out;
  for (const auto& a : alerts.alerts()) {
    if (!Set(a.first_seen())) continue;
    const absl::Time t = FromProtoTime(a.first_seen());
    if (t < ax.since || t > ax.until) continue;
    // An alert about another target of this host is not marked here.
    auto it = a.details().find("target");
    if (it != a.details().end() && it->second != target) continue;
    const double x = ax.X(t);
    absl::StrAppendFormat(
        &out,
        "<path class=\"alert-mark sev-%s\" data-at=\"%d\" d=\"M%.1f %.1f "
        "l-5 -9 h10 z\"><title>%s %s: %s</title></path>",
        Severity(a.severity()), absl::ToUnixSeconds(t), x, kTop + 9,
        HtmlEscape(Time(t)), Text(a.kind()), Text(a.summary()));
  }
  return out;
}

std::string Timeline(const HostData& d, const HostTarget& t) {
  const Axis ax{d.since, d.until};
  // The Query service answers newest first; draw oldest first.
  std::vector<const v1::StoredPathRun*> runs;
  for (const auto& r : t.history.runs()) {
    if (!Set(r.run().started_at())) continue;
    runs.push_back(&r);
  }
  std::sort(runs.begin(), runs.end(), [](const auto* a, const auto* b) {
    return FromProtoTime(a->run().started_at()) <
           FromProtoTime(b->run().started_at());
  });
  std::vector<Point> points;
  for (const auto* r : runs) {
    Point p;
    p.at = FromProtoTime(r->run().started_at());
    p.seq = r->seq();
    p.seq_at = p.at;
    if (const v1::PathAggregate* agg = AggregateOf(*r); agg != nullptr) {
      p.aggregate = true;
      p.seq = 0;
      p.runs = std::max<size_t>(1, agg->runs());
      p.answered = agg->reached_runs() > 0;
      p.avg = agg->median_ms();
      p.best = agg->best_ms();
      p.worst = agg->worst_ms();
      p.loss = agg->max_loss_percent();
      points.push_back(p);
      continue;  // no hops past raw retention: no route to compare
    }
    if (r->run().hops().empty()) {
      // Read without hops (PathHistoryRequest.without_hops): the
      // destination's figures from the run's row; a run that did not reach
      // it is no answer (its last hop is in its mtr table, a click away).
      const v1::PathHop& h = r->run().destination();
      p.answered = r->run().destination_reached();
      p.avg = h.avg_ms();
      p.best = h.best_ms();
      p.worst = h.worst_ms();
      p.loss = p.answered ? h.loss_percent() : 100;
    } else if (const v1::PathHop* h = EndHop(r->run()); h != nullptr) {
      p.answered = h->received() > 0;
      p.avg = h->avg_ms();
      p.best = h->best_ms();
      p.worst = h->worst_ms();
      p.loss = r->run().destination_reached() ? h->loss_percent() : 100;
    }
    points.push_back(p);
  }
  const bool bucketed = points.size() > kMaxPoints;
  if (bucketed) {
    std::vector<Point> b(kBuckets);
    const double span = absl::ToDoubleSeconds(d.until - d.since);
    for (Point& x : b) x.runs = 0;
    for (const Point& p : points) {
      size_t i = static_cast<size_t>(absl::ToDoubleSeconds(p.at - d.since) /
                                     span * kBuckets);
      i = std::min(i, kBuckets - 1);
      Point& q = b[i];
      if (q.runs == 0) {
        q = p;
        q.runs = 1;
        continue;
      }
      // The bucket links to its worst run (most loss; the latest of equals).
      if (p.loss >= q.loss && p.seq != 0) q.seq = p.seq, q.seq_at = p.seq_at;
      q.aggregate = q.aggregate || p.aggregate;
      if (p.answered && q.answered) {
        q.avg = (q.avg * q.runs + p.avg) / (q.runs + 1);
        q.best = std::min(q.best, p.best);
        q.worst = std::max(q.worst, p.worst);
      } else if (p.answered) {
        q.avg = p.avg, q.best = p.best, q.worst = p.worst, q.answered = true;
      }
      q.loss = std::max(q.loss, p.loss);
      q.runs += p.runs;
    }
    points.clear();
    for (const Point& q : b) {
      if (q.runs > 0) points.push_back(q);
    }
  }
  // The y scale: to the 95th percentile of the worst figures, so one
  // outlier does not flatten the rest (higher points are clipped).
  std::vector<double> worst;
  for (const Point& p : points) {
    if (p.answered) worst.push_back(p.worst);
  }
  double ymax = 1;
  if (!worst.empty()) {
    std::sort(worst.begin(), worst.end());
    ymax = std::max(1.0, worst[worst.size() * 95 / 100] * 1.1);
  }
  auto Y = [&](double ms) {
    return kTop + (kH - kTop - kBottom) * (1 - std::min(ms, ymax) / ymax);
  };
  // The points' figures, for the hover text and the click that the
  // script (kAppJs) gives every timeline: one attribute instead of an
  // element, a <title> and a link per point (5 x 450 of those were 785 kB
  // of a 1 d page). Per point, space-separated, comma-separated fields:
  // its start in microseconds after data-t0, the line's, best and worst
  // figure (empty: no answer), the loss, the runs it stands for, the run
  // a click opens (empty: none, an aggregate) and that run's start after
  // data-t0 when it is not the point's, and 1 for an hourly or coarser
  // aggregate. Trailing empty fields are left out. Only numbers: nothing
  // an agent sent goes into it.
  const int64_t t0 = absl::ToUnixMicros(d.since);
  std::string data;
  data.reserve(points.size() * 48);
  for (const Point& p : points) {
    std::string f = absl::StrCat(absl::ToUnixMicros(p.at) - t0, ",");
    if (p.answered) {
      absl::StrAppend(&f, Num(p.avg), ",", Num(p.best), ",", Num(p.worst));
    } else {
      f += ",,";
    }
    absl::StrAppend(&f, ",", Num(p.loss), ",", p.runs, ",");
    if (p.seq != 0) absl::StrAppend(&f, p.seq);
    f += ",";
    if (p.seq != 0 && p.seq_at != p.at) {
      absl::StrAppend(&f, absl::ToUnixMicros(p.seq_at) - t0);
    }
    f += p.aggregate ? ",1" : "";
    while (!f.empty() && f.back() == ',') f.pop_back();
    if (!data.empty()) data += ' ';
    data += f;
  }
  // The link a click opens, without the run's seq and start (the script
  // adds them): percent-encoded, then HTML-escaped as any attribute.
  const std::string run_url =
      absl::StrCat("/run?host=", Url(d.host), "&amp;target=", Url(t.target),
                   "&amp;range=", d.range);
  std::string svg = absl::StrFormat(
      "<svg class=\"timeline\" viewBox=\"0 0 %.0f %.0f\" "
      "data-target=\"%s\" data-points=\"%d\" data-bucketed=\"%d\" "
      "data-t0=\"%d\" data-span=\"%d\" data-x0=\"%.0f\" data-x1=\"%.0f\" "
      "data-y0=\"%.0f\" data-y1=\"%.0f\" data-run=\"%s\" data-pts=\"%s\">",
      kW, kH, Text(t.target), points.size(), bucketed ? 1 : 0, t0,
      absl::ToInt64Microseconds(d.until - d.since), kLeft, kW, kTop,
      kH - kBottom, run_url, data);
  absl::StrAppendFormat(&svg,
                        "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" "
                        "x2=\"%.1f\" y2=\"%.1f\"/>",
                        kLeft, kH - kBottom, kW, kH - kBottom);
  absl::StrAppendFormat(&svg,
                        "<text class=\"tick\" x=\"2\" y=\"%.1f\">%.1f ms</text>"
                        "<text class=\"tick\" x=\"2\" y=\"%.1f\">0</text>",
                        kTop + 8, ymax, kH - kBottom);
  svg += TimeTicks(ax, kH - 6);
  // The band: best to worst of each round, one polygon per stretch of
  // answered points.
  std::string upper, lower, line;
  auto Flush = [&] {
    if (!upper.empty()) {
      absl::StrAppend(&svg, "<path class=\"band\" d=\"M", upper, lower,
                      "Z\"/>");
      absl::StrAppend(&svg, "<polyline class=\"median\" points=\"", line,
                      "\"/>");
    }
    upper.clear(), lower.clear(), line.clear();
  };
  // A gap of more than three typical intervals (an agent that was off, raw
  // runs after hourly ones) breaks the line and the band, as SmokePing's
  // do: drawn across, it would claim figures nobody measured.
  absl::Duration typical = absl::ZeroDuration();
  {
    std::vector<absl::Duration> gaps;
    for (size_t i = 1; i < points.size(); ++i) {
      gaps.push_back(points[i].at - points[i - 1].at);
    }
    if (!gaps.empty()) {
      std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2,
                       gaps.end());
      typical = gaps[gaps.size() / 2];
    }
  }
  for (size_t i = 0; i < points.size(); ++i) {
    const Point& p = points[i];
    if (i > 0 && typical > absl::ZeroDuration() &&
        p.at - points[i - 1].at > 3 * typical) {
      Flush();
    }
    if (!p.answered) {
      Flush();
      continue;
    }
    const double x = ax.X(p.at);
    absl::StrAppendFormat(&upper, "%s%.1f %.1f ", upper.empty() ? "" : "L", x,
                          Y(p.worst));
    lower = absl::StrFormat("L%.1f %.1f ", x, Y(p.best)) + lower;
    absl::StrAppendFormat(&line, "%.1f,%.1f ", x, Y(p.avg));
  }
  Flush();
  for (absl::Time rc : t.route_changes) {
    const double x = ax.X(rc);
    absl::StrAppendFormat(
        &svg,
        "<line class=\"route-change\" data-at=\"%d\" x1=\"%.1f\" y1=\"%.1f\" "
        "x2=\"%.1f\" y2=\"%.1f\"><title>route changed %s</title></line>",
        absl::ToUnixSeconds(rc), x, kTop, x, kH - kBottom,
        HtmlEscape(Time(rc)));
  }
  // The points: one path per loss class, each point a zero-length
  // segment that the round line cap draws as a dot (app.css), in the
  // order of data-pts. Relative moves keep the numbers short.
  std::vector<std::string> dots(5);
  std::vector<std::pair<double, double>> last(5, {0, 0});
  for (const Point& p : points) {
    const double x = std::round(ax.X(p.at) * 10) / 10;
    const double y =
        std::round((p.answered ? Y(p.avg) : kH - kBottom - 4) * 10) / 10;
    const std::string cls = LossClass(p.loss);
    const size_t k = static_cast<size_t>(cls.back() - '0');
    std::string& out = dots[k];
    if (out.empty()) {
      absl::StrAppend(&out, "M", Num(x), " ", Num(y), "h0");
    } else {
      absl::StrAppend(&out, "m", Num(x - last[k].first), " ",
                      Num(y - last[k].second), "h0");
    }
    last[k] = {x, y};
  }
  for (size_t k = 0; k < dots.size(); ++k) {
    if (dots[k].empty()) continue;
    absl::StrAppend(&svg, "<path class=\"pts loss", k, "\" d=\"", dots[k],
                    "\"/>");
  }
  svg += AlertMarks(ax, d.alerts, t.target);
  svg += "</svg>";
  if (bucketed) {
    svg += absl::StrFormat(
        "<p class=\"resolution\">%d runs drawn as %d buckets of %s each: "
        "the line their mean, the band best to worst, the colour the worst "
        "loss</p>",
        runs.size(), points.size(),
        absl::FormatDuration(
            absl::Seconds(absl::ToInt64Seconds(d.until - d.since) /
                          static_cast<int64_t>(kBuckets))));
  }
  return svg;
}

std::string EventsStrip(const Axis& ax, const std::vector<absl::Time>& at,
                        const std::vector<std::string>& cls,
                        const std::vector<std::string>& titles) {
  std::string svg = absl::StrFormat(
      "<svg class=\"events\" viewBox=\"0 0 %.0f 44\" data-events=\"%d\">", kW,
      at.size());
  absl::StrAppendFormat(&svg,
                        "<line class=\"axis\" x1=\"%.1f\" y1=\"20\" "
                        "x2=\"%.1f\" y2=\"20\"/>",
                        kLeft, kW);
  svg += TimeTicks(ax, 40);
  for (size_t i = 0; i < at.size(); ++i) {
    const double x = ax.X(at[i]);
    const bool up = cls[i] == "appeared";
    absl::StrAppendFormat(&svg,
                          "<path class=\"ev %s\" d=\"M%.1f 20 l-4 %d h8 z\">"
                          "<title>%s</title></path>",
                          cls[i], x, up ? -9 : 9, titles[i]);
  }
  return svg + "</svg>";
}

std::string ProtoName(v1::Transport t) {
  return t == v1::TRANSPORT_TCP ? "tcp" : t == v1::TRANSPORT_UDP ? "udp" : "-";
}

std::string SocketsSection(const HostData& d) {
  const Axis ax{d.since, d.until};
  std::vector<absl::Time> at;
  std::vector<std::string> cls, titles;
  std::string rows;
  size_t shown = 0;
  for (const auto& c : d.sockets.changes()) {
    if (!Set(c.at())) continue;
    const auto& f = c.fact();
    const std::string where =
        f.key_kind() == v1::SOCKET_KEY_KIND_LISTENER
            ? absl::StrCat(Text(f.local_address()), ":", f.local_port())
            : absl::StrCat(Text(f.remote_address()), ":", f.remote_port());
    const std::string change = c.change() == "appeared" ? "appeared" : "gone";
    const std::string title =
        absl::StrCat(HtmlEscape(TimeOf(c.at())), " ", change, " ",
                     Text(SocketKeyKindName(f.key_kind())), " ",
                     ProtoName(f.proto()), " ", where, " ", Text(f.exe()));
    at.push_back(FromProtoTime(c.at()));
    cls.push_back(change);
    titles.push_back(title);
    if (shown++ < kMaxRows) {
      absl::StrAppend(&rows, "<tr class=\"", change, "\"><td>",
                      HtmlEscape(TimeOf(c.at())), "</td><td>", change,
                      "</td><td>", Text(SocketKeyKindName(f.key_kind())),
                      "</td><td>", ProtoName(f.proto()), "</td><td>", where,
                      "</td><td>", Text(f.exe()), "</td><td>",
                      Text(f.process_name()), "</td></tr>");
    }
  }
  std::string out = "<h2>Socket changes</h2>";
  out += EventsStrip(ax, at, cls, titles);
  if (rows.empty()) return out + "<p>No socket changes in this range.</p>";
  absl::StrAppend(&out,
                  "<table class=\"events socket-changes\"><tr><th>at</th>"
                  "<th>change</th><th>kind</th><th>proto</th><th>address</th>"
                  "<th>executable</th><th>process</th></tr>",
                  rows, "</table>");
  if (shown > kMaxRows) {
    absl::StrAppend(&out, "<p>", shown - kMaxRows, " more not listed.</p>");
  }
  return out;
}

std::string FilesSection(const HostData& d) {
  const Axis ax{d.since, d.until};
  std::vector<absl::Time> at;
  std::vector<std::string> cls, titles;
  std::string rows;
  size_t shown = 0;
  auto Add = [&](absl::Time t, const std::string& change,
                 const v1::FileFact& f) {
    if (t < d.since || t > d.until) return;
    at.push_back(t);
    cls.push_back(change);
    titles.push_back(absl::StrCat(HtmlEscape(Time(t)), " ", change, " ",
                                  Text(f.exe()), " ", Text(f.path())));
    if (shown++ < kMaxRows) {
      absl::StrAppend(&rows, "<tr class=\"", change, "\"><td>",
                      HtmlEscape(Time(t)), "</td><td>", change, "</td><td>",
                      Text(f.exe()), f.exe_deleted() ? " (deleted)" : "",
                      "</td><td>", Text(f.path()), "</td><td>", f.uid(),
                      "</td></tr>");
    }
  };
  for (const auto& f : d.files.facts()) {
    if (Set(f.first_seen())) Add(FromProtoTime(f.first_seen()), "appeared", f);
    if (!f.present() && Set(f.last_seen())) {
      Add(FromProtoTime(f.last_seen()), "gone", f);
    }
  }
  std::string out = "<h2>File access changes</h2>";
  out += EventsStrip(ax, at, cls, titles);
  if (rows.empty()) return out + "<p>No file access changes in this range.</p>";
  absl::StrAppend(&out,
                  "<table class=\"events file-changes\"><tr><th>at</th>"
                  "<th>change</th><th>executable</th><th>path</th><th>uid</th>"
                  "</tr>",
                  rows, "</table>");
  if (shown > kMaxRows) {
    absl::StrAppend(&out, "<p>", shown - kMaxRows, " more not listed.</p>");
  }
  return out;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

bool SpeedOk(const v1::SpeedResult& r) {
  return r.outcome() == v1::SPEED_OUTCOME_OK;
}

// One point of a pair's throughput: a test, or an aggregate of the tests
// of an hour or more.
struct SpeedPoint {
  absl::Time at;
  bool ok = false;  // a test that succeeded, or an aggregate with one
  double bps = 0;   // what the server received; an aggregate's median
  int runs = 1, failed = 0;
  bool aggregate = false;
  bool skipped = false;
  std::string error;
};

// The response's `points` (every resolution); its raw `results` when it
// has no points (an answer without them holds raw results only).
std::vector<SpeedPoint> SpeedPoints(const v1::SpeedHistoryResponse& h) {
  std::vector<SpeedPoint> out;
  auto from_result = [&](const v1::SpeedResult& r) {
    SpeedPoint p;
    if (!Set(r.started_at())) return;
    p.at = FromProtoTime(r.started_at());
    p.ok = SpeedOk(r);
    p.bps = r.forward().received_bps();
    p.failed = p.ok ? 0 : 1;
    p.skipped = r.outcome() == v1::SPEED_OUTCOME_SKIPPED;
    p.error = r.error();
    out.push_back(p);
  };
  if (h.points().empty()) {
    for (const auto& r : h.results()) from_result(r);
    return out;
  }
  for (const v1::SpeedHistoryPoint& point : h.points()) {
    if (const v1::SpeedAggregate* agg = AggregateOf(point); agg != nullptr) {
      if (!point.has_at()) continue;
      SpeedPoint p;
      p.aggregate = true;
      p.at = FromProtoTime(point.at());
      p.runs = static_cast<int>(agg->runs());
      p.failed = p.runs - static_cast<int>(agg->ok_runs());
      p.ok = agg->ok_runs() > 0;
      p.bps = agg->median_bps();
      if (p.failed > 0) {
        p.error = absl::StrCat(p.failed, " of ", p.runs, " tests failed");
      }
      out.push_back(p);
    } else if (point.has_result()) {
      from_result(point.result());
    }
  }
  return out;
}

}  // namespace

std::string HtmlEscape(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string Text(absl::string_view s) { return HtmlEscape(Printable(s)); }

std::string RatioClass(bool has_result, bool failed, double ratio) {
  if (!has_result) return "none";
  if (failed) return "fail";
  if (!(ratio > 0) || !std::isfinite(ratio)) return "none";
  if (ratio >= 0.8) return "ok";
  if (ratio >= 0.5) return "warn";
  return "bad";
}

std::string ResolutionName(v1::Resolution r) {
  switch (r) {
    case v1::RESOLUTION_HOURLY:
      return "hourly";
    case v1::RESOLUTION_COARSE:
      return "coarse";
    case v1::RESOLUTION_MIXED:
      return "mixed";
    default:
      // AUTO is never in an answer; an answer that leaves the field unset
      // holds raw rows only.
      return "raw";
  }
}

const std::vector<std::pair<std::string, absl::Duration>>& Ranges() {
  static const auto* r =
      new std::vector<std::pair<std::string, absl::Duration>>{
          {"3h", absl::Hours(3)},
          {"1d", absl::Hours(24)},
          {"7d", absl::Hours(24 * 7)},
          {"30d", absl::Hours(24 * 30)},
          {"1y", absl::Hours(24 * 365)}};
  return *r;
}

std::string RenderHomeLive(const HomeData& d) {
  const v1::OverviewResponse& o = d.overview;
  std::string out;
  absl::StrAppend(&out, "<p class=\"generated\">as of ",
                  HtmlEscape(TimeOf(o.generated_at())), "</p>");
  for (const auto& n : o.notices()) {
    absl::StrAppend(&out, "<p class=\"notice\">", Text(n), "</p>");
  }
  // Open alerts per host, for the marks.
  std::map<std::string, std::pair<int, v1::Severity>> marks;
  for (const auto& a : o.open_alerts()) {
    for (const auto& h : a.hosts()) {
      auto& m = marks[h];
      ++m.first;
      m.second = std::max(m.second, a.severity());
    }
  }
  out +=
      "<h2>Hosts</h2><table class=\"hosts\"><tr><th>host</th><th>state</th>"
      "<th>alerts</th><th>addresses</th><th>last seen</th><th>paths</th></tr>";
  for (const auto& h : o.hosts()) {
    const auto& a = h.agent();
    const std::string state = a.revoked()  ? "revoked"
                              : a.online() ? "online"
                                           : "offline";
    std::string mark = "<td class=\"alerts\"></td>";
    if (auto it = marks.find(a.name()); it != marks.end()) {
      mark = absl::StrCat("<td class=\"alerts open sev-",
                          Severity(it->second.second), "\" title=\"",
                          it->second.first, " open alert(s)\">&#9888; ",
                          it->second.first, "</td>");
    }
    std::vector<std::string> addrs;
    for (const auto& x : a.addresses()) addrs.push_back(Text(x));
    std::vector<std::string> paths;
    for (const auto& p : h.paths()) {
      paths.push_back(absl::StrFormat(
          "<span class=\"%s\">%s %.1f ms</span>",
          LossClass(p.destination_reached() ? p.loss_percent() : 100),
          Text(p.target()), p.avg_ms()));
    }
    absl::StrAppend(&out, "<tr class=\"host\" data-host=\"", Text(a.name()),
                    "\"><td><a href=\"/host?name=", Url(a.name()), "\">",
                    Text(a.name()), "</a></td><td class=\"state ", state, "\">",
                    state, "</td>", mark, "<td>", absl::StrJoin(addrs, ", "),
                    "</td><td>", HtmlEscape(TimeOf(a.last_seen())), "</td><td>",
                    absl::StrJoin(paths, " "), "</td></tr>");
  }
  out += "</table>";

  out += "<h2>Open alerts</h2>";
  std::vector<const v1::Alert*> alerts;
  for (const auto& a : o.open_alerts()) alerts.push_back(&a);
  std::stable_sort(alerts.begin(), alerts.end(), [](const auto* x, auto* y) {
    if (x->severity() != y->severity()) return x->severity() > y->severity();
    return FromProtoTime(x->first_seen()) > FromProtoTime(y->first_seen());
  });
  if (alerts.empty()) {
    out += "<p class=\"open-alerts none\">No open alerts.</p>";
  } else {
    out +=
        "<table class=\"open-alerts\"><tr><th>severity</th><th>kind</th>"
        "<th>scope</th><th>hosts</th><th>since</th><th>summary</th></tr>";
    for (const auto* a : alerts) {
      absl::StrAppend(&out, "<tr class=\"alert sev-", Severity(a->severity()),
                      "\" data-id=\"", a->id(), "\"><td>",
                      Severity(a->severity()), "</td><td>", Text(a->kind()),
                      "</td><td>", Scope(a->scope()), "</td><td>", Hosts(*a),
                      "</td><td>", HtmlEscape(TimeOf(a->first_seen())),
                      "</td><td>", Text(a->summary()), "</td></tr>");
    }
    out += "</table>";
  }

  // The heat map: rows are clients, columns servers (peers, then external
  // targets), each cell the latest result against the pair's baseline.
  out += "<h2>Speed</h2>";
  const auto& m = o.speed();
  std::vector<std::string> rows, cols;
  std::set<std::string> agents;
  for (const auto& h : o.hosts()) agents.insert(h.agent().name());
  for (const auto& h : m.hosts()) {
    if (agents.count(h)) rows.push_back(h);
    cols.push_back(h);
  }
  std::map<std::pair<std::string, std::string>, const v1::SpeedCell*> cells;
  for (const auto& c : m.cells()) {
    cells[{c.client(), c.server()}] = &c;
    if (std::find(cols.begin(), cols.end(), c.server()) == cols.end()) {
      cols.push_back(c.server());
    }
    if (std::find(rows.begin(), rows.end(), c.client()) == rows.end()) {
      rows.push_back(c.client());
    }
  }
  if (rows.empty()) {
    out += "<p>No speed results yet.</p>";
    return out;
  }
  out += "<table class=\"heatmap\"><tr><th>client \\ server</th>";
  for (const auto& c : cols) absl::StrAppend(&out, "<th>", Text(c), "</th>");
  out += "</tr>";
  for (const auto& r : rows) {
    absl::StrAppend(&out, "<tr><th>", Text(r), "</th>");
    for (const auto& c : cols) {
      if (r == c) {
        out += "<td class=\"self\"></td>";
        continue;
      }
      auto it = cells.find({r, c});
      const v1::SpeedCell* cell = it == cells.end() ? nullptr : it->second;
      const bool failed =
          cell != nullptr && cell->outcome() != v1::SPEED_OUTCOME_OK;
      auto b = d.baseline_bps.find({r, c});
      const double base = b == d.baseline_bps.end() ? 0 : b->second;
      const double ratio = cell != nullptr && base > 0 ? cell->bps() / base : 0;
      const std::string cls = RatioClass(cell != nullptr, failed, ratio);
      std::string title, value;
      if (cell == nullptr) {
        title = "no test yet";
      } else if (failed) {
        value = "failed";
        title = absl::StrCat("failed at ", TimeOf(cell->at()), ": ",
                             Printable(cell->error()));
      } else {
        value = Bps(cell->bps());
        title = absl::StrCat(
            Bps(cell->bps()), " at ", TimeOf(cell->at()),
            base > 0
                ? absl::StrFormat("; baseline %s, ratio %.2f", Bps(base), ratio)
                : std::string("; no baseline yet"));
      }
      absl::StrAppendFormat(
          &out,
          "<td class=\"cell %s\" data-client=\"%s\" data-server=\"%s\" "
          "data-ratio=\"%.3f\" title=\"%s\"><a href=\"/pair?a=%s&amp;b=%s\">"
          "%s</a></td>",
          cls, Text(r), Text(c), ratio, HtmlEscape(title), Url(r), Url(c),
          HtmlEscape(value));
    }
    out += "</tr>";
  }
  out +=
      "</table><p class=\"legend\"><span class=\"cell ok\">&ge; 0.8</span> "
      "<span class=\"cell warn\">0.5-0.8</span> <span class=\"cell bad\">"
      "&lt; 0.5</span> of the pair's baseline; <span class=\"cell fail\">"
      "failed</span> <span class=\"cell none\">no result or baseline</span>"
      "</p>";
  for (const auto& n : m.notices()) {
    absl::StrAppend(&out, "<p class=\"notice\">", Text(n), "</p>");
  }
  return out;
}

std::string RenderHost(const HostData& d) {
  std::string out = absl::StrCat("<h1>", Text(d.host), "</h1>");
  if (!d.known) {
    return out + "<p class=\"error\">No such host.</p>";
  }
  const auto& a = d.agent;
  std::vector<std::string> addrs;
  for (const auto& x : a.addresses()) addrs.push_back(Text(x));
  absl::StrAppend(&out, "<p class=\"state ", a.online() ? "online" : "offline",
                  "\">", a.online() ? "online" : "offline", "; ",
                  absl::StrJoin(addrs, ", "), "; last seen ",
                  HtmlEscape(TimeOf(a.last_seen())), "</p>");
  out += RangeLinks(absl::StrCat("/host?name=", Url(d.host), "&amp;"), d.range);
  for (const auto& t : d.targets) {
    absl::StrAppend(
        &out, "<section class=\"target\"><h2>", Text(t.target),
        "</h2><p class=\"resolution\">resolution: ",
        ResolutionName(t.history.resolution()), "; ", t.history.runs_size(),
        ResolutionName(t.history.resolution()) == "raw" ? " runs" : " points",
        " from ", HtmlEscape(Time(d.since)), " to ", HtmlEscape(Time(d.until)),
        "</p>");
    out += Timeline(d, t);
    out += "</section>";
  }
  if (d.targets.empty()) out += "<p>No path results yet.</p>";
  out += SocketsSection(d);
  out += FilesSection(d);
  return out;
}

std::string RenderRun(const RunData& d) {
  std::string out =
      absl::StrCat("<h1>", Text(d.host), " &rarr; ", Text(d.target), "</h1>");
  absl::StrAppend(&out, "<p><a href=\"/host?name=", Url(d.host),
                  "&amp;range=", d.range, "\">back to ", Text(d.host),
                  "</a></p><section id=\"run\">");
  if (!d.found) {
    out +=
        "<p class=\"error\">That run is not there (past the raw retention, "
        "or no such run).</p>";
  } else {
    absl::StrAppend(&out, "<p>", Text(d.target), " (",
                    Text(d.run.run().resolved_address()), ") at ",
                    HtmlEscape(TimeOf(d.run.run().started_at())), ", seq ",
                    d.run.seq(), "</p>", MtrTable(d.run.run()));
  }
  return out + "</section>";
}

std::string RenderPair(const PairData& d) {
  std::string out =
      absl::StrCat("<h1>", Text(d.a), " &harr; ", Text(d.b), "</h1>");
  out += RangeLinks(
      absl::StrCat("/pair?a=", Url(d.a), "&amp;b=", Url(d.b), "&amp;"),
      d.range);
  const Axis ax{d.since, d.until};
  struct Dir {
    const v1::SpeedHistoryResponse* h;
    std::string cls, label;
    double baseline = 0;
  };
  std::vector<Dir> dirs = {
      {&d.ab, "ab", absl::StrCat(Text(d.a), " &rarr; ", Text(d.b))},
      {&d.ba, "ba", absl::StrCat(Text(d.b), " &rarr; ", Text(d.a))}};
  double ymax = 1;
  std::vector<std::vector<SpeedPoint>> pts;
  for (Dir& dir : dirs) {
    pts.push_back(SpeedPoints(*dir.h));
    std::sort(
        pts.back().begin(), pts.back().end(),
        [](const SpeedPoint& x, const SpeedPoint& y) { return x.at < y.at; });
    std::vector<double> ok;
    for (const SpeedPoint& p : pts.back()) {
      if (p.ok) ok.push_back(p.bps);
    }
    dir.baseline = Median(ok);
    for (double v : ok) ymax = std::max(ymax, v * 1.1);
  }
  auto Y = [&](double v) {
    return kTop + (kH - kTop - kBottom) * (1 - std::min(v, ymax) / ymax);
  };
  absl::StrAppendFormat(&out, "<p class=\"resolution\">resolution: %s</p>",
                        ResolutionName(d.ab.resolution()));
  std::string svg = absl::StrFormat(
      "<svg class=\"timeline speed\" viewBox=\"0 0 %.0f %.0f\">", kW, kH);
  absl::StrAppendFormat(&svg,
                        "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" "
                        "x2=\"%.1f\" y2=\"%.1f\"/><text class=\"tick\" x=\"2\" "
                        "y=\"%.1f\">%s</text>",
                        kLeft, kH - kBottom, kW, kH - kBottom, kTop + 8,
                        Bps(ymax));
  svg += TimeTicks(ax, kH - 6);
  std::string failures;
  for (size_t k = 0; k < dirs.size(); ++k) {
    const Dir& dir = dirs[k];
    std::string line;
    for (const SpeedPoint& p : pts[k]) {
      if (p.ok)
        absl::StrAppendFormat(&line, "%.1f,%.1f ", ax.X(p.at), Y(p.bps));
    }
    if (dir.baseline > 0) {
      absl::StrAppendFormat(
          &svg,
          "<line class=\"baseline %s\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
          "y2=\"%.1f\"><title>%s baseline (median) %s</title></line>",
          dir.cls, kLeft, Y(dir.baseline), kW, Y(dir.baseline), dir.label,
          Bps(dir.baseline));
    }
    absl::StrAppend(&svg, "<polyline class=\"speed ", dir.cls, "\" points=\"",
                    line, "\"/>");
    for (const SpeedPoint& p : pts[k]) {
      const double x = ax.X(p.at);
      if (p.ok) {
        absl::StrAppendFormat(
            &svg,
            "<circle class=\"pt %s%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\">"
            "<title>%s %s %s%s</title></circle>",
            dir.cls, p.aggregate ? " agg" : "", x, Y(p.bps), dir.label,
            HtmlEscape(Time(p.at)), Bps(p.bps),
            p.aggregate ? absl::StrCat(" (median of ", p.runs, " tests)")
                        : std::string());
      }
      if (p.failed > 0) {
        absl::StrAppendFormat(
            &svg,
            "<path class=\"fail-mark %s\" d=\"M%.1f %.1f l8 8 m0 -8 l-8 8\">"
            "<title>%s %s failed: %s</title></path>",
            dir.cls, x - 4, kH - kBottom - 12, dir.label,
            HtmlEscape(Time(p.at)), Text(p.error));
        absl::StrAppend(&failures, "<tr><td>", HtmlEscape(Time(p.at)),
                        "</td><td>", dir.label, "</td><td>",
                        p.skipped ? "skipped" : "failed", "</td><td>",
                        Text(p.error), "</td></tr>");
      }
    }
  }
  out += svg + "</svg>";
  absl::StrAppend(&out, "<p class=\"legend\"><span class=\"ab\">",
                  dirs[0].label, "</span> <span class=\"ba\">", dirs[1].label,
                  "</span>; dashed: each direction's median in this range</p>");
  out += "<h2>Failed tests</h2>";
  if (failures.empty()) {
    out += "<p>None in this range.</p>";
  } else {
    absl::StrAppend(&out,
                    "<table class=\"failures\"><tr><th>at</th><th>direction"
                    "</th><th>outcome</th><th>reason</th></tr>",
                    failures, "</table>");
  }
  return out;
}

std::string RenderAlerts(const AlertsData& d) {
  std::string out = "<h1>Alerts</h1>";
  out += RangeLinks("/alerts?", d.range);
  const Axis ax{d.since, d.until};
  std::vector<const v1::Alert*> alerts;
  for (const auto& a : d.alerts.alerts()) alerts.push_back(&a);
  std::sort(alerts.begin(), alerts.end(), [](const auto* x, const auto* y) {
    return FromProtoTime(x->first_seen()) < FromProtoTime(y->first_seen());
  });
  constexpr size_t kMaxBars = 200;
  const size_t bars = std::min(alerts.size(), kMaxBars);
  const double row = 12;
  const double h = kTop + bars * row + kBottom + 6;
  std::string svg = absl::StrFormat(
      "<svg class=\"timeline alerts\" viewBox=\"0 0 %.0f %.0f\" "
      "data-alerts=\"%d\">",
      kW, h, bars);
  svg += TimeTicks(ax, h - 6);
  for (size_t i = 0; i < bars; ++i) {
    const v1::Alert& a = *alerts[alerts.size() - bars + i];
    const absl::Time from = FromProtoTime(a.first_seen());
    const absl::Time to =
        Set(a.resolved_at()) ? FromProtoTime(a.resolved_at()) : d.until;
    const double x1 = ax.X(from), x2 = std::max(ax.X(to), x1 + 2);
    absl::StrAppendFormat(
        &svg,
        "<a href=\"#alert-%d\"><rect class=\"bar sev-%s\" x=\"%.1f\" "
        "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>%s %s: %s</title>"
        "</rect></a>",
        a.id(), Severity(a.severity()), x1, kTop + i * row, x2 - x1, row - 3,
        HtmlEscape(Time(from)), Text(a.kind()), Text(a.summary()));
  }
  out += svg + "</svg>";
  if (alerts.empty()) return out + "<p>No alerts in this range.</p>";
  out +=
      "<table class=\"alert-history\"><tr><th>id</th><th>severity</th>"
      "<th>kind</th><th>scope</th><th>hosts</th><th>summary</th>"
      "<th>first seen</th><th>last seen</th><th>resolved</th>"
      "<th>evidence</th></tr>";
  for (auto it = alerts.rbegin(); it != alerts.rend(); ++it) {
    const v1::Alert& a = **it;
    std::string ev;
    for (const auto& e : a.evidence()) {
      absl::StrAppend(&ev, "<li>", HtmlEscape(TimeOf(e.at())), " ",
                      Text(e.agent()), " #", e.seq(), ": ", Text(e.note()),
                      "</li>");
    }
    absl::StrAppend(&out, "<tr id=\"alert-", a.id(), "\" class=\"alert sev-",
                    Severity(a.severity()), "\"><td>", a.id(), "</td><td>",
                    Severity(a.severity()), "</td><td>", Text(a.kind()),
                    "</td><td>", Scope(a.scope()), "</td><td>", Hosts(a),
                    "</td><td>", Text(a.summary()), "</td><td>",
                    HtmlEscape(TimeOf(a.first_seen())), "</td><td>",
                    HtmlEscape(TimeOf(a.last_seen())), "</td><td>",
                    Set(a.resolved_at()) ? HtmlEscape(TimeOf(a.resolved_at()))
                                         : std::string("open"),
                    "</td><td><ul class=\"evidence\">", ev, "</ul></td></tr>");
  }
  return out + "</table>";
}

std::string RenderLogin(absl::string_view error) {
  std::string out = "<h1>netvigil</h1>";
  if (!error.empty()) {
    absl::StrAppend(&out, "<p class=\"error\">", HtmlEscape(error), "</p>");
  }
  out +=
      "<form method=\"post\" action=\"/login\"><label>password <input "
      "type=\"password\" name=\"password\" autocomplete=\"current-password\" "
      "autofocus></label> <button type=\"submit\">log in</button></form>";
  return out;
}

std::string Layout(absl::string_view title, absl::string_view body,
                   bool logout) {
  return absl::StrCat(
      "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width\">"
      "<title>",
      HtmlEscape(title),
      " - netvigil</title><link rel=\"stylesheet\" href=\"/static/app.css\">"
      "<script src=\"/static/app.js\" defer></script></head><body>"
      "<nav class=\"top\"><a href=\"/\">home</a> <a href=\"/alerts\">alerts"
      "</a>",
      logout ? " <form method=\"post\" action=\"/logout\" class=\"logout\">"
               "<button type=\"submit\">log out</button></form>"
             : "",
      "</nav><main>", body, "</main></body></html>");
}

}  // namespace netvigil::collector::web
