// The viewer on synthetic dumps: escaping of untrusted strings, the windows read back from dumps,
// the report's data and page, and the Chrome trace export (validity, clock alignment, per-rank
// files). The browser half is tests/viewer/.
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "ncclfr/analysis/analyze.h"
#include "ncclfr/analysis/load.h"
#include "ncclfr/analysis/render.h"
#include "ncclfr/synth.h"
#include "ncclfr/viewer/chrome_trace.h"
#include "ncclfr/viewer/dump_window.h"
#include "ncclfr/viewer/json_text.h"
#include "ncclfr/viewer/report.h"
#include "testing/dump_rewrite.h"
#include "trace_validate.h"

namespace fs = std::filesystem;
using namespace ncclfr;
using namespace ncclfr::viewer;
using nlohmann::json;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/ncclfr-viewer-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { fs::remove_all(path); }
};

synth::Result makeJob(const fs::path& dir, const std::string& scenario, int32_t ranks = 16, int32_t pp = 0) {
  synth::Options o;
  o.scenario = scenario;
  o.ranks = ranks;
  o.pp = pp;
  o.entries = 256;
  o.threads = 1;
  synth::Result r;
  std::string error;
  REQUIRE(synth::writeJob(o, dir.string(), &r, &error));
  return r;
}

struct Loaded {
  analysis::Job job;
  analysis::Verdict verdict;
};

Loaded load(const fs::path& dir) {
  Loaded l;
  std::vector<analysis::Problem> problems;
  auto files = analysis::findDumpFiles({dir.string()}, &problems);
  REQUIRE(problems.empty());
  auto loaded = analysis::loadDumps(files, {});
  REQUIRE(loaded.problems.empty());
  std::string error;
  REQUIRE(analysis::selectJob(std::move(loaded), {}, &l.job, &error));
  l.verdict = analysis::analyze(l.job);
  return l;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// The JSON the page embeds, taken back out of the HTML.
json embeddedData(const std::string& html) {
  const std::string open = "<script type=\"application/json\" id=\"ncclfr-data\">";
  size_t a = html.find(open);
  REQUIRE(a != std::string::npos);
  a += open.size();
  size_t b = html.find("</script>", a);
  REQUIRE(b != std::string::npos);
  return json::parse(html.substr(a, b - a));
}

size_t countOf(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const json* commById(const json& data, const std::string& id) {
  for (const auto& c : data["comms"]) {
    if (c["id"] == id) return &c;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("JSON strings from dumps are valid UTF-8 and cannot end a script block") {
  CHECK(jsonString("</script><!--x-->") == "\"\\u003c/script\\u003e\\u003c!--x--\\u003e\"");
  CHECK(jsonString("a&b") == "\"a\\u0026b\"");
  CHECK(jsonString("line\xe2\x80\xa8sep\xe2\x80\xa9") == "\"line\\u2028sep\\u2029\"");
  CHECK(jsonString("q\"\\\n\t\x01") == "\"q\\\"\\\\\\n\\t\\u0001\"");
  // Invalid UTF-8 (a stray byte, an overlong NUL, a surrogate, a cut sequence) becomes U+FFFD.
  std::string bad = jsonString("a\xff" "b\xc0\x80" "c\xed\xa0\x80" "d\xe2\x82");
  json parsed = json::parse(bad);
  std::string back = parsed.get<std::string>();
  CHECK(back.find('\xff') == std::string::npos);
  CHECK(countOf(back, "\xef\xbf\xbd") == 8);
  // Valid multi-byte text passes through unchanged.
  std::string ok = "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x9a\x80";
  CHECK(json::parse(jsonString(ok)).get<std::string>() == ok);
  CHECK(jsonString(ok).find('\\') == std::string::npos);
}

TEST_CASE("htmlSafeJson and truncateUtf8") {
  CHECK(htmlSafeJson(R"({"a":"</script>&"})") == R"({"a":"\u003c/script\u003e\u0026"})");
  CHECK(truncateUtf8("h\xc3\xa9llo", 2) == "h...");
  CHECK(truncateUtf8("hello", 5) == "hello");
  CHECK(truncateUtf8("hello", 3) == "hel...");
}

TEST_CASE("rank lists for --ranks") {
  std::set<int32_t> r;
  CHECK(parseRankList("0-3,7,10-11", &r));
  CHECK(r == std::set<int32_t>{0, 1, 2, 3, 7, 10, 11});
  for (const char* bad : {"", "a", "3-1", "1,", ",1", "1--2", "-1", "99999999"}) {
    std::set<int32_t> x;
    CHECK_FALSE(parseRankList(bad, &x));
  }
}

TEST_CASE("windows read back from a dump are exactly the calls asked for") {
  TempDir dir;
  makeJob(dir.path, "device_stall", 16, 2);  // pp = 2: sends and receives too
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    std::string path = entry.path().string();
    std::vector<FullEntry> all;
    std::string error;
    REQUIRE(readAllEntries(path, 0, &all, nullptr, &error));
    std::vector<WindowRequest> reqs;
    std::map<uint32_t, int64_t> newest;
    for (const auto& e : all) {
      if (!e.isP2P()) newest[e.comm] = std::max(newest[e.comm], e.seq);
    }
    std::set<uint32_t> comms;
    for (const auto& e : all) comms.insert(e.comm);
    for (uint32_t c : comms) {
      WindowRequest q;
      q.comm = c;
      q.hi = newest.count(c) ? newest[c] - 1 : -1;
      q.lo = std::max<int64_t>(0, q.hi - 4);
      q.maxP2P = 3;
      reqs.push_back(q);
    }
    std::vector<std::vector<analysis::EntryView>> got;
    REQUIRE(readWindows(path, reqs, &got, &error));
    REQUIRE(got.size() == reqs.size());
    for (size_t k = 0; k < reqs.size(); ++k) {
      const auto& q = reqs[k];
      // Brute force over every entry: the collectives in [lo, hi], the newest maxP2P sends and
      // receives from lo - 1 on.
      std::vector<uint32_t> want, p2p;
      for (const auto& e : all) {
        if (e.comm != q.comm) continue;
        if (e.isP2P()) {
          if (q.hi < 0 || (e.seq >= q.lo - 1 && e.seq <= q.hi)) p2p.push_back(e.index);
        } else if (q.hi >= 0 && e.seq >= q.lo && e.seq <= q.hi) {
          want.push_back(e.index);
        }
      }
      if (p2p.size() > q.maxP2P) p2p.erase(p2p.begin(), p2p.end() - static_cast<std::ptrdiff_t>(q.maxP2P));
      want.insert(want.end(), p2p.begin(), p2p.end());
      std::sort(want.begin(), want.end());
      std::vector<uint32_t> have;
      for (const auto& e : got[k]) have.push_back(e.index);
      INFO(path << " comm " << q.comm << " lo " << q.lo << " hi " << q.hi);
      CHECK(have == want);
    }
  }
}

TEST_CASE("report data: verdict, frontier windows, suspect lanes") {
  TempDir dir;
  auto made = makeJob(dir.path, "host_stall", 16);
  auto l = load(dir.path);
  std::vector<analysis::Problem> problems;
  ReportStats stats;
  json data = buildReportData(l.job, l.verdict, {}, &problems, &stats);
  CHECK(problems.empty());
  REQUIRE(data["verdict"]["status"] == "hang");
  REQUIRE(!data["verdict"]["suspects"].empty());
  const json& suspect = data["verdict"]["suspects"][0];
  CHECK(suspect["rank"] == made.faultRank);
  CHECK(suspect["reason"] == "host_stall");
  CHECK_FALSE(data["verdict"].contains("comms"));  // the page has its own, with windows
  CHECK(data["t0"].is_string());
  CHECK(data["window"]["before"] == 5);
  CHECK(data["window"]["after"] == 3);
  CHECK(data["window"]["entries"] == stats.entries);

  const json* c = commById(data, suspect["comm"].get<std::string>());
  REQUIRE(c != nullptr);
  int64_t f = (*c)["fr"];
  CHECK(f == suspect["seq"].get<int64_t>());
  CHECK((*c)["stalled"] == true);
  CHECK((*c)["lo"] == f - 5);
  CHECK((*c)["hi"] == f + 3);
  // Members: 9 numbers each; entries: 7 each, as many as the members say.
  const json& m = (*c)["m"];
  const json& e = (*c)["e"];
  REQUIRE(m.size() == 9 * static_cast<size_t>((*c)["size"].get<int>()));
  size_t total = 0;
  bool sawSuspect = false;
  size_t off = 0;
  for (size_t i = 0; i < m.size(); i += 9) {
    size_t ne = m[i + 8];
    int pi = m[i + 1];
    REQUIRE(pi >= 0);
    if (data["procs"]["rank"][static_cast<size_t>(pi)] == made.faultRank) {
      sawSuspect = true;
      CHECK(data["enums"]["rankState"][m[i + 2].get<size_t>()] == "not_enqueued");
    }
    for (size_t k = 0; k < ne; ++k, off += 7) {
      int64_t seq = (*c)["lo"].get<int64_t>() + e[off].get<int64_t>();
      CHECK(seq >= f - 6);
      CHECK(seq <= f + 3);
      const json& sig = (*c)["sigs"][e[off + 1].get<size_t>()];
      CHECK(sig.size() == 5);
    }
    total += ne;
  }
  CHECK(sawSuspect);
  CHECK(off == e.size());
  CHECK(total > 0);

  SECTION("a small budget narrows the window and says so") {
    ReportOptions o;
    o.entryBudget = 200;
    json small = buildReportData(l.job, l.verdict, o, &problems, &stats);
    CHECK(small["window"]["shrunk"] == true);
    CHECK(small["window"]["before"].get<int>() < 5);
    CHECK(small["window"]["before"].get<int>() >= 1);
  }
  SECTION("so does a small page size to aim for") {
    ReportOptions o;
    o.targetBytes = 6'000;
    json small = buildReportData(l.job, l.verdict, o, &problems, &stats);
    CHECK(small["window"]["shrunk"] == true);
    CHECK(small["window"]["before"].get<int>() < 5);
  }
}

TEST_CASE("the page escapes everything a hostile dump holds") {
  TempDir dir;
  auto made = makeJob(dir.path, "host_stall", 8);
  const std::string evilHost = "<img src=x onerror=alert(1)>";
  const std::string evilJob = "</script><script>alert(2)</script>";
  const std::string evilCmd = std::string("run <!-- --> \xe2\x80\xa8 \xff </SCRIPT >");
  for (const auto& f : made.files) {
    std::string error;
    REQUIRE(testing::rewriteDump(f, [&](schema::Dump::Builder d) {
      d.getProcess().setJobId(evilJob);
      d.getProcess().setCmdline(evilCmd);
      if (d.getProcess().getGlobalRank() == made.faultRank) d.getProcess().setHost(evilHost);
      for (auto c : d.getComms()) c.setName("</script><!--");
      d.getInfo().setDetail("\xe2\x80\xa9<b>bold</b>");
    }, &error));
  }
  auto l = load(dir.path);
  REQUIRE(!l.verdict.suspects.empty());
  CHECK(l.verdict.suspects[0].who.host == evilHost);
  TempDir out;
  fs::path html = out.path / "r.html";
  std::string error;
  ReportStats stats;
  REQUIRE(writeReport(l.job, l.verdict, {}, html.string(), nullptr, &stats, &error));
  std::string page = slurp(html);
  CHECK(stats.bytes == page.size());
  // Exactly two script blocks end (the data, the code); no comment opens; no raw line separators.
  CHECK(countOf(lower(page), "</script") == 2);
  CHECK(countOf(page, "<!--") == 0);
  CHECK(page.find("\xe2\x80\xa8") == std::string::npos);
  CHECK(page.find("\xe2\x80\xa9") == std::string::npos);
  CHECK(page.find(evilHost) == std::string::npos);
  CHECK(page.find("<title>ncclfr report: &lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;</title>") !=
        std::string::npos);
  // Only the page's own script may run.
  CHECK(page.find("script-src 'sha256-") != std::string::npos);
  CHECK(page.find("default-src 'none'") != std::string::npos);
  // The data still says exactly what the dumps said.
  json data = embeddedData(page);
  const auto& strings = data["strings"];
  CHECK(std::find(strings.begin(), strings.end(), evilHost) != strings.end());
  CHECK(data["verdict"]["job"] == evilJob);
  CHECK(data["verdict"]["suspects"][0]["host"] == evilHost);
  CHECK(data["comms"][0]["name"] == "</script><!--");
}

TEST_CASE("a dump that cannot be read again costs its lanes, not the report") {
  TempDir dir;
  auto made = makeJob(dir.path, "host_stall", 8);
  auto l = load(dir.path);
  // Damage one file after the analysis read it.
  fs::resize_file(made.files[2], 100);
  std::vector<analysis::Problem> problems;
  json data = buildReportData(l.job, l.verdict, {}, &problems);
  REQUIRE(problems.size() == 1);
  CHECK(data["comms"].size() == l.verdict.comms.size());
  std::ostringstream trace;
  std::vector<analysis::Problem> tp;
  TraceStats ts;
  std::string error;
  REQUIRE(writeChromeTrace(l.job, &l.verdict, {}, trace, &tp, &ts, &error));
  CHECK(tp.size() == 1);
  CHECK(ts.processes == 7);
  TraceSummary sum;
  CHECK(validateChromeTrace(trace.str(), &sum, &error));
}

TEST_CASE("chrome trace: valid, a process per rank, pending calls open to the dump, suspects labelled") {
  TempDir dir;
  auto made = makeJob(dir.path, "device_stall", 16, 2);
  auto l = load(dir.path);
  std::ostringstream out;
  std::vector<analysis::Problem> problems;
  TraceStats stats;
  std::string error;
  REQUIRE(writeChromeTrace(l.job, &l.verdict, {}, out, &problems, &stats, &error));
  CHECK(problems.empty());
  CHECK(stats.processes == 16);
  TraceSummary sum;
  INFO(error);
  REQUIRE(validateChromeTrace(out.str(), &sum, &error));
  CHECK(sum.pids.size() == 16);
  CHECK(sum.complete == stats.events);
  CHECK(sum.pending > 0);
  json doc = json::parse(out.str());
  CHECK(doc["distributedInfo"]["world_size"] == 16);
  CHECK(doc["distributedInfo"]["nccl_version"] == "2.28.9");
  CHECK(doc["displayTimeUnit"] == "ns");
  bool labelled = false;
  std::map<int64_t, double> dumpTs;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "process_labels" && e["pid"] == made.faultRank) {
      labelled = e["args"]["labels"].get<std::string>().find("suspect: device_stall") != std::string::npos;
    }
    if (e["ph"] == "i" && e["name"].get<std::string>().rfind("dump", 0) == 0) dumpTs[e["pid"]] = e["ts"];
  }
  CHECK(labelled);
  // A pending call ends at its process's dump.
  size_t checked = 0;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] != "X" || !e["args"].value("pending", false)) continue;
    double end = e["ts"].get<double>() + e["dur"].get<double>();
    CHECK(end == Approx(dumpTs[e["pid"]]).margin(0.002));
    ++checked;
  }
  CHECK(checked == sum.pending);

  SECTION("--ranks and --last") {
    TraceOptions o;
    o.ranks = {1, 3};
    o.last = 10;
    std::ostringstream part;
    REQUIRE(writeChromeTrace(l.job, &l.verdict, o, part, &problems, &stats, &error));
    CHECK(stats.processes == 2);
    CHECK(stats.events <= 20);
    TraceSummary s2;
    REQUIRE(validateChromeTrace(part.str(), &s2, &error));
    CHECK(s2.pids == std::set<int64_t>{1, 3});
  }
}

TEST_CASE("hosts whose clocks started at different times line up on one axis") {
  TempDir dir;
  auto made = makeJob(dir.path, "host_stall", 4);
  auto exportOf = [&](Loaded& l) {
    std::ostringstream out;
    std::string error;
    REQUIRE(writeChromeTrace(l.job, &l.verdict, {}, out, nullptr, nullptr, &error));
    std::vector<std::tuple<int64_t, std::string, double, double>> xs;
    json doc = json::parse(out.str());
    for (const auto& e : doc["traceEvents"]) {
      if (e["ph"] == "X") xs.emplace_back(e["pid"], e["name"], e["ts"], e["dur"]);
    }
    return xs;
  };
  auto before = load(dir.path);
  auto a = exportOf(before);
  json ra = buildReportData(before.job, before.verdict, {}, nullptr);
  // Rank 1's host booted 3 hours earlier, rank 2's 17 minutes later: only monotonic times move.
  std::string error;
  for (const auto& f : made.files) {
    REQUIRE(testing::rewriteDump(f, [](schema::Dump::Builder d) {
      int32_t r = d.getProcess().getGlobalRank();
      if (r == 1) testing::shiftMonotonic(d, 3LL * 3600 * 1'000'000'000);
      if (r == 2) testing::shiftMonotonic(d, -17LL * 60 * 1'000'000'000);
    }, &error));
  }
  auto after = load(dir.path);
  auto b = exportOf(after);
  REQUIRE(a.size() == b.size());
  CHECK(a == b);
  json rb = buildReportData(after.job, after.verdict, {}, nullptr);
  CHECK(ra["comms"] == rb["comms"]);
  CHECK(ra["procs"]["dump"] == rb["procs"]["dump"]);
}

TEST_CASE("per-rank trace files, as HTA reads them") {
  TempDir dir;
  makeJob(dir.path, "mismatch", 8);
  auto l = load(dir.path);
  TempDir out;
  std::string error;
  TraceStats stats;
  REQUIRE(writeChromeTracePerRank(l.job, &l.verdict, {}, out.path.string(), nullptr, &stats, &error));
  CHECK(stats.processes == 8);
  for (int r = 0; r < 8; ++r) {
    fs::path f = out.path / ("rank" + std::to_string(r) + ".json");
    REQUIRE(fs::exists(f));
    std::string text = slurp(f);
    TraceSummary sum;
    INFO(f << ": " << error);
    REQUIRE(validateChromeTrace(text, &sum, &error));
    json doc = json::parse(text);
    CHECK(doc["distributedInfo"]["rank"] == r);
    CHECK(doc["distributedInfo"]["world_size"] == 8);
    CHECK(sum.pids == std::set<int64_t>{r});
    CHECK(doc["distributedInfo"]["pg_count"].get<int>() >= 2);
    CHECK(doc["distributedInfo"]["pg_config"][0].contains("ranks"));
  }
}

TEST_CASE("absurd times in a damaged dump neither overflow nor move the others") {
  TempDir dir;
  auto made = makeJob(dir.path, "host_stall", 8);
  auto honest = load(dir.path);
  json before = buildReportData(honest.job, honest.verdict, {}, nullptr);
  std::string error;
  for (const auto& f : made.files) {
    REQUIRE(testing::rewriteDump(f, [](schema::Dump::Builder d) {
      int32_t r = d.getProcess().getGlobalRank();
      if (r == 1) d.getInfo().setIncidentWallNs(std::numeric_limits<int64_t>::min() + 1);
      if (r == 2) d.getInfo().setIncidentWallNs(std::numeric_limits<int64_t>::max());
      if (r == 3) d.getInfo().setWallNs(std::numeric_limits<int64_t>::max());
    }, &error));
  }
  auto l = load(dir.path);
  json after = buildReportData(l.job, l.verdict, {}, nullptr);
  CHECK(after["t0"] == before["t0"]);
  std::ostringstream out;
  REQUIRE(writeChromeTrace(l.job, &l.verdict, {}, out, nullptr, nullptr, &error));
  TraceSummary sum;
  INFO(error);
  CHECK(validateChromeTrace(out.str(), &sum, &error));
}
