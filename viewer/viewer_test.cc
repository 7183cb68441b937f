#include <catch2/catch.hpp>

#include "ncclfr/viewer/json_text.h"

TEST_CASE("json strings are escaped for HTML script blocks") {
  CHECK(ncclfr::viewer::jsonString("</script>") == "\"\\u003c/script\\u003e\"");
}
