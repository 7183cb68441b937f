// Writes the dumps the viewer's browser test needs and no honest writer produces:
//
//   viewer_fixture hostile DIR   an 8-rank job with a planted host stall whose strings are hostile:
//                                the stalled rank's host name is an <img onerror> payload, the job
//                                id closes the <script> block, communicator names open an HTML
//                                comment, command lines hold U+2028 and invalid UTF-8.
//
// Prints "fault_rank=R" so the test knows which lane must be marked.
#include <cstdio>
#include <string>

#include "ncclfr/synth.h"
#include "testing/dump_rewrite.h"

int main(int argc, char** argv) {
  if (argc != 3 || std::string(argv[1]) != "hostile") {
    std::fprintf(stderr, "usage: viewer_fixture hostile DIR\n");
    return 2;
  }
  ncclfr::synth::Options o;
  o.ranks = 8;
  o.scenario = "host_stall";
  o.entries = 256;
  o.threads = 1;
  ncclfr::synth::Result r;
  std::string error;
  if (!ncclfr::synth::writeJob(o, argv[2], &r, &error)) {
    std::fprintf(stderr, "viewer_fixture: %s\n", error.c_str());
    return 1;
  }
  for (const auto& f : r.files) {
    bool ok = ncclfr::viewer::testing::rewriteDump(f, [&](ncclfr::schema::Dump::Builder d) {
      auto p = d.getProcess();
      p.setJobId("\"><svg onload=alert(3)></script><script>alert(2)</script>");
      p.setCmdline(std::string("train.py --name '<!--' \xe2\x80\xa8 \xff\xfe <script>alert(4)</script>"));
      if (p.getGlobalRank() == r.faultRank) p.setHost("<img src=x onerror=alert(1)>");
      for (auto c : d.getComms()) c.setName(std::string(c.getName().cStr()) + "<!--</script>");
      d.getInfo().setDetail("stall \xe2\x80\xa9<b onmouseover=alert(5)>x</b>");
    }, &error);
    if (!ok) {
      std::fprintf(stderr, "viewer_fixture: %s\n", error.c_str());
      return 1;
    }
  }
  std::printf("fault_rank=%d\n", r.faultRank);
  return 0;
}
