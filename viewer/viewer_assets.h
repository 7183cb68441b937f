// The report template (viewer/assets/), compiled in by embed_assets.cmake.
#pragma once

#include <string_view>

namespace ncclfr::viewer::assets {

std::string_view html();  // holds the placeholders the report generator fills in
std::string_view css();
std::string_view js();
std::string_view jsSha256Hex();  // of js(), for the Content-Security-Policy

}  // namespace ncclfr::viewer::assets
