// One version for the whole build: shared/version.h is generated from
// project(fulcrum VERSION ...) in the root CMakeLists.txt, and each of the
// three programs prints it for --version as "NAME VERSION".
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "shared/version.h"

namespace {

struct Output {
  std::string out;
  int status = -1;
};

Output runVersion(const std::string& path) {
  Output run;
  FILE* pipe = ::popen(("'" + path + "' --version 2>&1").c_str(), "r");
  if (!pipe) return run;
  char buffer[256];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) run.out.append(buffer, n);
  run.status = ::pclose(pipe);
  return run;
}

TEST(Version, HeaderIsTheProjectVersion) {
  EXPECT_STREQ(fulcrum::kVersion, FULCRUM_PROJECT_VERSION);
}

TEST(Version, EveryProgramPrintsIt) {
  const std::string expected = std::string(" ") + fulcrum::kVersion + "\n";
  const struct {
    const char* name;
    const char* path;
  } programs[] = {
      {"fulcrum", FULCRUM_CLI_PATH},
      {"fulcrum-control", FULCRUM_CONTROL_PATH},
      {"fulcrum-data", FULCRUM_DATA_PATH},
  };
  for (const auto& p : programs) {
    SCOPED_TRACE(p.path);
    const Output run = runVersion(p.path);
    ASSERT_TRUE(WIFEXITED(run.status)) << run.out;
    EXPECT_EQ(WEXITSTATUS(run.status), 0) << run.out;
    EXPECT_EQ(run.out, p.name + expected);
  }
}

}  // namespace
