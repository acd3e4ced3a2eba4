// Tests of the configuration store: editing the candidate, commits, rollback,
// compare, persistence across reopening, and every error path (bad input,
// invalid candidate, files that are not stores, storage failures).
#include "control-plane/store/config_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <variant>
#include <vector>

namespace fulcrum {
namespace {

const std::string kValid =
    "set service-set web inside-interface fs-web-in outside-interface fs-web-out\n"
    "set application shop service-set web facade 198.18.0.10 port 80\n"
    "set application shop server s1 address 198.18.1.11\n";

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Runs SQL on the store's file through a connection of its own, the way
// another process (or an operator with the sqlite3 tool) would.
void rawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* message = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
  EXPECT_EQ(rc, SQLITE_OK) << (message != nullptr ? message : "") << "\n" << sql;
  sqlite3_free(message);
  sqlite3_close(db);
}

std::string rawQueryText(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    if (text != nullptr) out = text;
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

int64_t commitNumber(const std::variant<int64_t, ConfigError>& r) {
  if (const auto* e = std::get_if<ConfigError>(&r)) {
    ADD_FAILURE() << "commit failed: " << e->toString();
    return -1;
  }
  return std::get<int64_t>(r);
}

class StoreTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fulcrum-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/config.db";
  }
  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  ConfigStore& openStore() {
    store_.reset();
    std::string error;
    store_ = ConfigStore::open(path_, &error);
    EXPECT_NE(store_, nullptr) << error;
    EXPECT_EQ(error, "");
    return *store_;
  }

  // Opening must fail; returns the reason.
  std::string openFails(const std::string& path) {
    std::string error;
    auto store = ConfigStore::open(path, &error);
    EXPECT_EQ(store, nullptr) << path;
    EXPECT_FALSE(error.empty());
    EXPECT_NE(error.find(path), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
    return error;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<ConfigStore> store_;
};

// --- A new store ---------------------------------------------------------------

TEST_F(StoreTest, NewStoreIsEmpty) {
  ConfigStore& s = openStore();
  EXPECT_EQ(s.path(), path_);
  EXPECT_EQ(s.candidate(), Config{});
  EXPECT_EQ(s.candidateText(), "");
  EXPECT_EQ(s.active(), std::nullopt);
  EXPECT_TRUE(s.commits().empty());
  EXPECT_EQ(s.commitByNumber(1), std::nullopt);
  EXPECT_EQ(s.compare(), "");
  EXPECT_FALSE(s.candidateChanged());
  EXPECT_EQ(s.lastReadError(), "");
}

TEST_F(StoreTest, SchemaAndSettingsOnDisk) {
  openStore();
  EXPECT_EQ(rawQueryText(path_, "SELECT schema_version FROM meta"), "1");
  EXPECT_EQ(rawQueryText(path_, "PRAGMA journal_mode"), "wal");  // persistent in the file
  EXPECT_EQ(rawQueryText(path_, "SELECT count(*) FROM candidate"), "1");
  // A second candidate row or a commit number 0 cannot exist.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "INSERT INTO candidate VALUES (2, '', 0)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  EXPECT_NE(
      sqlite3_exec(db, "INSERT INTO commits VALUES (0, 0, '', '', '')", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
}

TEST_F(StoreTest, OpeningTwiceKeepsTheSchema) {
  openStore();
  ASSERT_EQ(store_->edit(kValid), std::nullopt);
  store_.reset();
  ConfigStore& s = openStore();
  EXPECT_EQ(s.candidateText(), configToText(parseConfig(kValid).config));
  EXPECT_EQ(rawQueryText(path_, "SELECT count(*) FROM meta"), "1");
}

// --- Editing the candidate -------------------------------------------------------

TEST_F(StoreTest, EditAcceptsIncompleteStatesOneLineAtATime) {
  ConfigStore& s = openStore();
  // The CLI sends one line at a time, the server before its application.
  ASSERT_EQ(s.edit("set application shop server s1 address 198.18.1.11"), std::nullopt);
  ASSERT_EQ(s.edit("set application shop facade 198.18.0.10"), std::nullopt);
  ASSERT_EQ(s.edit("set service-set web"), std::nullopt);
  ASSERT_EQ(s.edit("set application shop service-set web"), std::nullopt);
  ASSERT_EQ(s.edit("set service-set web inside-interface fs-web-in outside-interface fs-web-out"),
            std::nullopt);
  EXPECT_EQ(s.candidate(), parseConfig(kValid).config);
  EXPECT_EQ(s.candidateText(),
            "set service-set web inside-interface fs-web-in outside-interface fs-web-out\n"
            "set application shop service-set web facade 198.18.0.10 port 80\n"
            "set application shop server s1 address 198.18.1.11\n");
  EXPECT_TRUE(s.candidateChanged());
}

TEST_F(StoreTest, EditAppliesSeveralStatements) {
  ConfigStore& s = openStore();
  ASSERT_EQ(s.edit(kValid + "# a comment\n\nset application shop session-timeout 60\n"),
            std::nullopt);
  EXPECT_EQ(s.candidate().applications.at(0).sessionTimeoutSeconds, 60u);
  ASSERT_EQ(s.edit("delete application shop server s1\ndelete application shop session-timeout"),
            std::nullopt);
  EXPECT_TRUE(s.candidate().applications.at(0).servers.empty());
  EXPECT_EQ(s.candidate().applications.at(0).sessionTimeoutSeconds, 900u);
}

TEST_F(StoreTest, BadEditChangesNothing) {
  ConfigStore& s = openStore();
  ASSERT_EQ(s.edit(kValid), std::nullopt);
  const std::string before = s.candidateText();

  struct Case {
    std::string statements;
    uint32_t line;
    std::string word;
  };
  const Case cases[] = {
      // The good first line must not be kept either: all or nothing.
      {"set application shop port 81\nset application shop colour blue\n", 2, "colour"},
      {"set application shop facade 198.18.0.300", 1, "facade"},
      {"delete application shop server s9", 1, "s9"},
      {"delete application nope", 1, "nope"},
      {"set application shop server s2 weight 2\ndelete application shop monitor", 2, "monitor"},
      {"set application shop port 99999", 1, "port"},
      {"sett system syslog-file /a", 1, "sett"},
      {"set application shop monitor expect-body \"unterminated", 1, "\"unterminated"},
  };
  for (const Case& c : cases) {
    const auto e = s.edit(c.statements);
    ASSERT_TRUE(e.has_value()) << c.statements;
    EXPECT_EQ(e->line, c.line) << c.statements << ": " << e->toString();
    EXPECT_EQ(e->word, c.word) << c.statements << ": " << e->toString();
    EXPECT_EQ(s.candidateText(), before) << c.statements;
  }
  // Nor on disk.
  store_.reset();
  EXPECT_EQ(openStore().candidateText(), before);
}

TEST_F(StoreTest, EditThatChangesNothingIsFine) {
  ConfigStore& s = openStore();
  ASSERT_EQ(s.edit(kValid), std::nullopt);
  const std::string before = s.candidateText();
  EXPECT_EQ(s.edit(""), std::nullopt);
  EXPECT_EQ(s.edit("# only a comment"), std::nullopt);
  EXPECT_EQ(s.edit("set application shop port 80"), std::nullopt);
  EXPECT_EQ(s.candidateText(), before);
}

TEST_F(StoreTest, ReplaceCandidate) {
  ConfigStore& s = openStore();
  ASSERT_EQ(s.edit("set application other facade 198.18.0.99"), std::nullopt);
  ASSERT_EQ(s.replaceCandidate(kValid), std::nullopt);
  EXPECT_EQ(s.candidate(), parseConfig(kValid).config);  // `other` is gone

  const std::string before = s.candidateText();
  const auto e = s.replaceCandidate("set application a port 80\n\nset application a port x\n");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->line, 3u);
  EXPECT_EQ(e->word, "port");
  EXPECT_EQ(s.candidateText(), before);

  // An incomplete file loads: only commit validates.
  ASSERT_EQ(s.replaceCandidate("set application a server s1 port 8080\n"), std::nullopt);
  EXPECT_EQ(s.candidateText(),
            "set application a port 80\n"
            "set application a server s1 port 8080\n");
  // And an empty one empties the candidate.
  ASSERT_EQ(s.replaceCandidate(""), std::nullopt);
  EXPECT_EQ(s.candidateText(), "");
}

// --- Commits -------------------------------------------------------------------

TEST_F(StoreTest, CommitStoresAndActivates) {
  ConfigStore& s = openStore();
  ASSERT_EQ(s.edit(kValid), std::nullopt);
  const int64_t before = nowMs();
  EXPECT_EQ(commitNumber(s.commit("alice", "first shop")), 1);
  const int64_t after = nowMs();

  const auto a = s.active();
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->number, 1);
  EXPECT_EQ(a->user, "alice");
  EXPECT_EQ(a->comment, "first shop");
  EXPECT_EQ(a->text, configToText(parseConfig(kValid).config));
  EXPECT_GE(a->timeUnixMs, before);
  EXPECT_LE(a->timeUnixMs, after);
  EXPECT_EQ(s.commitByNumber(1), a);
  EXPECT_EQ(s.candidateText(), a->text);
  EXPECT_FALSE(s.candidateChanged());
  EXPECT_EQ(s.compare(), "");
}

TEST_F(StoreTest, CommitOfAnUnchangedCandidateMakesANewCommit) {
  ConfigStore& s = openStore();
  ASSERT_EQ(s.edit(kValid), std::nullopt);
  EXPECT_EQ(commitNumber(s.commit("alice", "")), 1);
  EXPECT_FALSE(s.candidateChanged());
  EXPECT_EQ(commitNumber(s.commit("bob", "again, to record this")), 2);
  EXPECT_EQ(s.active()->number, 2);
  EXPECT_EQ(s.active()->text, s.commitByNumber(1)->text);
  EXPECT_EQ(s.active()->user, "bob");
}

TEST_F(StoreTest, CommitOfTheEmptyConfigurationIsAllowed) {
  ConfigStore& s = openStore();
  EXPECT_EQ(commitNumber(s.commit("alice", "nothing yet")), 1);
  EXPECT_EQ(s.active()->text, "");
}

TEST_F(StoreTest, InvalidCandidateIsNotCommitted) {
  ConfigStore& s = openStore();
  ASSERT_EQ(s.edit(kValid), std::nullopt);
  ASSERT_EQ(commitNumber(s.commit("alice", "good")), 1);
  const auto good = s.active();
  // A server without an address, then one whose façade is another's server.
  ASSERT_EQ(s.edit("set application shop server s2 weight 3"), std::nullopt);
  const std::string candidate = s.candidateText();

  const auto r = s.commit("bob", "bad");
  ASSERT_TRUE(std::holds_alternative<ConfigError>(r));
  const ConfigError& e = std::get<ConfigError>(r);
  // The line is the one of `show configuration` (candidateText) at fault.
  EXPECT_EQ(e.word, "s2") << e.toString();
  EXPECT_NE(e.message.find("no address"), std::string::npos) << e.toString();
  ASSERT_EQ(e.line, 4u) << e.toString() << "\n" << candidate;
  EXPECT_EQ(candidate.substr(candidate.find("set application shop server s2")),
            "set application shop server s2 weight 3\n");

  // Nothing stored, nothing lost.
  EXPECT_EQ(s.active(), good);
  EXPECT_EQ(s.commits().size(), 1u);
  EXPECT_EQ(s.candidateText(), candidate);
  EXPECT_TRUE(s.candidateChanged());
}

TEST_F(StoreTest, InvalidCandidateErrorsNameLineAndWord) {
  ConfigStore& s = openStore();
  struct Case {
    std::string text;
    std::string word;
  };
  const Case cases[] = {
      {"set application shop server s1 address 198.18.1.11\n", "shop"},
      {kValid + "set application shop2 service-set web facade 198.18.0.10\n", "facade"},
      {kValid + "set application shop monitor type http interval 1 timeout 2\n", "timeout"},
      {"set service-set web inside-interface a\n", "web"},
      {kValid + "delete service-set web\n", "service-set"},
  };
  for (const Case& c : cases) {
    ASSERT_EQ(s.replaceCandidate(c.text), std::nullopt) << c.text;
    const auto r = s.commit("u", "c");
    ASSERT_TRUE(std::holds_alternative<ConfigError>(r)) << c.text;
    const ConfigError& e = std::get<ConfigError>(r);
    EXPECT_EQ(e.word, c.word) << c.text << e.toString();
    // The named line of the candidate's text holds the word.
    const std::string text = s.candidateText();
    ASSERT_GE(e.line, 1u) << e.toString();
    size_t start = 0;
    for (uint32_t i = 1; i < e.line; ++i) start = text.find('\n', start) + 1;
    const std::string line = text.substr(start, text.find('\n', start) - start);
    EXPECT_NE(line.find(c.word), std::string::npos) << e.toString() << "\n" << text;
  }
  EXPECT_TRUE(s.commits().empty());
  EXPECT_EQ(s.active(), std::nullopt);
}

TEST_F(StoreTest, UserAndCommentAreStoredExactly) {
  ConfigStore& s = openStore();
  const std::string user = "ops-\xc3\xa9quipe";
  const std::string comment = std::string("quote ' \" and NUL \0 and\nnewline", 32);
  ASSERT_EQ(commitNumber(s.commit(user, comment)), 1);
  store_.reset();
  const auto a = openStore().active();
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->user, user);
  EXPECT_EQ(a->comment, comment);
}

TEST_F(StoreTest, CommitsAreListedNewestFirst) {
  ConfigStore& s = openStore();
  ASSERT_EQ(s.edit(kValid), std::nullopt);
  for (int i = 1; i <= 5; ++i) {
    ASSERT_EQ(s.edit("set application shop session-timeout " + std::to_string(i * 10)),
              std::nullopt);
    ASSERT_EQ(commitNumber(s.commit("u" + std::to_string(i), "c")), i);
  }
  const auto all = s.commits();
  ASSERT_EQ(all.size(), 5u);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].number, static_cast<int64_t>(5 - i));
    EXPECT_EQ(all[i].user, "u" + std::to_string(5 - i));
    EXPECT_EQ(parseConfig(all[i].text).config.applications.at(0).sessionTimeoutSeconds,
              (5 - i) * 10);
    EXPECT_EQ(s.commitByNumber(all[i].number), all[i]);
  }
  const auto two = s.commits(2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].number, 5);
  EXPECT_EQ(two[1].number, 4);
  EXPECT_TRUE(s.commits(0).empty());
  EXPECT_EQ(s.commits(SIZE_MAX).size(), 5u);
  EXPECT_EQ(s.active(), all.front());
  EXPECT_EQ(s.commitByNumber(0), std::nullopt);
  EXPECT_EQ(s.commitByNumber(6), std::nullopt);
  EXPECT_EQ(s.commitByNumber(-1), std::nullopt);
}

// --- Rollback --------------------------------------------------------------------

TEST_F(StoreTest, RollbackMakesAnOldCommitTheCandidate) {
  ConfigStore& s = openStore();
  ASSERT_EQ(s.edit(kValid + "set application shop session-timeout 100"), std::nullopt);
  ASSERT_EQ(commitNumber(s.commit("u", "100")), 1);
  ASSERT_EQ(s.edit("set application shop session-timeout 200"), std::nullopt);
  ASSERT_EQ(commitNumber(s.commit("u", "200")), 2);
  ASSERT_EQ(s.edit("set application shop http-filter on"), std::nullopt);  // uncommitted

  ASSERT_EQ(s.rollback(1), std::nullopt);
  EXPECT_EQ(s.candidateText(), s.commitByNumber(1)->text);  // edits discarded
  EXPECT_EQ(s.active()->number, 2);                         // not activated
  EXPECT_TRUE(s.candidateChanged());
  EXPECT_EQ(s.compare(),
            "- set application shop session-timeout 200\n"
            "+ set application shop session-timeout 100\n");
  ASSERT_EQ(commitNumber(s.commit("u", "back to 100")), 3);
  EXPECT_EQ(s.active()->text, s.commitByNumber(1)->text);
  EXPECT_FALSE(s.candidateChanged());
  // Rolling back to the active commit is allowed and changes nothing.
  ASSERT_EQ(s.rollback(3), std::nullopt);
  EXPECT_FALSE(s.candidateChanged());
}

TEST_F(StoreTest, RollbackToAMissingCommitChangesNothing) {
  ConfigStore& s = openStore();
  auto e = s.rollback(1);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->word, "1");
  EXPECT_NE(e->message.find("nothing was committed"), std::string::npos) << e->toString();

  ASSERT_EQ(s.edit(kValid), std::nullopt);
  ASSERT_EQ(commitNumber(s.commit("u", "")), 1);
  ASSERT_EQ(s.edit("set application shop port 81"), std::nullopt);
  const std::string before = s.candidateText();
  for (int64_t n : {int64_t{0}, int64_t{2}, int64_t{-1}, INT64_MAX}) {
    e = s.rollback(n);
    ASSERT_TRUE(e.has_value()) << n;
    EXPECT_EQ(e->line, 0u);
    EXPECT_EQ(e->word, std::to_string(n));
    EXPECT_NE(e->message.find("no commit " + std::to_string(n)), std::string::npos);
    EXPECT_NE(e->message.find("1..1"), std::string::npos) << e->toString();
    EXPECT_EQ(s.candidateText(), before);
  }
}

// --- Compare -------------------------------------------------------------------

TEST_F(StoreTest, CompareAgainstNothingCommittedShowsAdditions) {
  ConfigStore& s = openStore();
  ASSERT_EQ(s.edit("set application shop port 81"), std::nullopt);
  EXPECT_EQ(s.compare(), "+ set application shop port 81\n");
  EXPECT_TRUE(s.candidateChanged());
}

TEST_F(StoreTest, CompareShowsRemovalsAndAdditionsInPlace) {
  ConfigStore& s = openStore();
  ASSERT_EQ(s.edit(kValid + "set application shop algorithm maglev\n"
                            "set application shop server s2 address 198.18.1.12\n"
                            "set application api service-set web facade 198.18.0.20\n"),
            std::nullopt);
  ASSERT_EQ(commitNumber(s.commit("u", "")), 1);
  ASSERT_EQ(s.edit("set system syslog-file /var/log/f.log\n"
                   "delete application shop algorithm\n"
                   "set application shop session-timeout 60\n"
                   "set application shop server s1 weight 4\n"
                   "delete application api\n"),
            std::nullopt);
  EXPECT_EQ(s.compare(),
            "+ set system syslog-file /var/log/f.log\n"
            "- set application shop algorithm maglev\n"
            "- set application shop server s1 address 198.18.1.11\n"
            "+ set application shop session-timeout 60\n"
            "+ set application shop server s1 address 198.18.1.11 weight 4\n"
            "- set application api service-set web facade 198.18.0.20 port 80\n");
  // Undoing the edits by hand makes them equal again.
  ASSERT_EQ(s.edit("delete system syslog-file\n"
                   "set application shop algorithm maglev\n"
                   "delete application shop session-timeout\n"
                   "delete application shop server s1 weight\n"
                   "set application api service-set web facade 198.18.0.20\n"),
            std::nullopt);
  EXPECT_EQ(s.compare(), "");
  EXPECT_FALSE(s.candidateChanged());
}

// --- Persistence ---------------------------------------------------------------

TEST_F(StoreTest, CandidateAndCommitsSurviveReopening) {
  {
    ConfigStore& s = openStore();
    ASSERT_EQ(s.edit(kValid), std::nullopt);
    ASSERT_EQ(commitNumber(s.commit("alice", "one")), 1);
    ASSERT_EQ(s.edit("set application shop session-timeout 61"), std::nullopt);
    ASSERT_EQ(commitNumber(s.commit("bob", "two")), 2);
    ASSERT_EQ(s.edit("set application shop http-filter on"), std::nullopt);  // not committed
  }
  const auto commitsBefore = store_->commits();
  const std::string candidateBefore = store_->candidateText();
  const std::string compareBefore = store_->compare();
  store_.reset();

  ConfigStore& s = openStore();
  EXPECT_EQ(s.candidateText(), candidateBefore);
  EXPECT_TRUE(s.candidate().applications.at(0).httpFilter);
  EXPECT_EQ(s.commits(), commitsBefore);
  EXPECT_EQ(s.active()->number, 2);
  EXPECT_EQ(s.active()->user, "bob");
  EXPECT_EQ(s.compare(), compareBefore);
  EXPECT_EQ(s.compare(), "+ set application shop http-filter on\n");
  EXPECT_EQ(commitNumber(s.commit("carol", "three")), 3);
}

TEST_F(StoreTest, TwoHandlesOnOneFileLoseNoEdit) {
  ConfigStore& a = openStore();
  std::string error;
  auto b = ConfigStore::open(path_, &error);
  ASSERT_NE(b, nullptr) << error;
  ASSERT_EQ(a.edit(kValid), std::nullopt);
  ASSERT_EQ(b->edit("set application shop session-timeout 70"), std::nullopt);
  ASSERT_EQ(a.edit("set application shop http-filter on"), std::nullopt);
  const Config c = b->candidate();
  EXPECT_EQ(c.applications.at(0).sessionTimeoutSeconds, 70u);
  EXPECT_TRUE(c.applications.at(0).httpFilter);
  ASSERT_EQ(commitNumber(b->commit("b", "")), 1);
  ASSERT_EQ(commitNumber(a.commit("a", "")), 2);
  EXPECT_EQ(b->active()->number, 2);
  EXPECT_FALSE(b->candidateChanged());
}

// --- Files that are not stores -------------------------------------------------

TEST_F(StoreTest, UnwritablePathsAreRefused) {
  const std::string missingDir = dir_ + "/no/such/dir/config.db";
  EXPECT_NE(openFails(missingDir).find("unable to open"), std::string::npos);
  openFails(dir_);  // a directory
  // Neither a temporary nor an in-memory database keeps commits.
  std::string error;
  EXPECT_EQ(ConfigStore::open("", &error), nullptr);
  EXPECT_NE(error.find("no file name"), std::string::npos) << error;
  EXPECT_EQ(ConfigStore::open(":memory:", &error), nullptr);
  EXPECT_NE(error.find("write-ahead"), std::string::npos) << error;
  // Error output is optional.
  EXPECT_EQ(ConfigStore::open(missingDir, nullptr), nullptr);
}

TEST_F(StoreTest, ReadOnlyFileIsRefused) {
  openStore();
  store_.reset();
  if (geteuid() == 0) GTEST_SKIP() << "root writes to read-only files";
  std::filesystem::permissions(path_, std::filesystem::perms::owner_read);
  std::filesystem::permissions(
      dir_, std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  openFails(path_);
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_all);
}

TEST_F(StoreTest, FileThatIsNotADatabaseIsRefusedAndKept) {
  const std::string text = std::string(4096, 'x') + "\nset application shop port 80\n";
  {
    std::ofstream f(path_, std::ios::binary);
    f << text;
  }
  const std::string error = openFails(path_);
  EXPECT_NE(error.find("not a database"), std::string::npos) << error;
  // The file is left as it was.
  std::ifstream f(path_, std::ios::binary);
  const std::string after((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(after, text);
}

TEST_F(StoreTest, EmptyFileBecomesAStore) {
  { std::ofstream f(path_); }
  ConfigStore& s = openStore();
  EXPECT_EQ(s.candidateText(), "");
}

TEST_F(StoreTest, OtherSqliteDatabaseIsRefused) {
  rawExec(path_, "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT)");
  const std::string error = openFails(path_);
  EXPECT_NE(error.find("not a Fulcrum configuration store"), std::string::npos) << error;
  EXPECT_EQ(rawQueryText(path_, "SELECT count(*) FROM sqlite_master WHERE name = 'candidate'"),
            "0");
}

TEST_F(StoreTest, NewerSchemaVersionIsRefused) {
  openStore();
  store_.reset();
  rawExec(path_, "UPDATE meta SET schema_version = 2");
  const std::string error = openFails(path_);
  EXPECT_NE(error.find("newer"), std::string::npos) << error;
  EXPECT_NE(error.find("schema version 2"), std::string::npos) << error;
}

TEST_F(StoreTest, DamagedStoresAreRefused) {
  openStore();
  store_.reset();
  rawExec(path_, "DELETE FROM meta");
  EXPECT_NE(openFails(path_).find("no schema version"), std::string::npos);

  rawExec(path_, "INSERT INTO meta VALUES (1, 1); DROP TABLE commits");
  EXPECT_NE(openFails(path_).find("damaged"), std::string::npos);
}

TEST_F(StoreTest, MissingCandidateRowIsRecreatedFromTheActiveCommit) {
  ConfigStore& s = openStore();
  ASSERT_EQ(s.edit(kValid), std::nullopt);
  ASSERT_EQ(commitNumber(s.commit("u", "")), 1);
  store_.reset();
  rawExec(path_, "DELETE FROM candidate");
  EXPECT_EQ(openStore().candidateText(), configToText(parseConfig(kValid).config));
}

// --- Storage failures while running ----------------------------------------------

TEST_F(StoreTest, StorageErrorsAreReportedAndChangeNothing) {
  ConfigStore& s = openStore();
  ASSERT_EQ(s.edit(kValid), std::nullopt);
  ASSERT_EQ(commitNumber(s.commit("u", "")), 1);
  ASSERT_EQ(s.edit("set application shop port 81"), std::nullopt);
  const std::string candidate = s.candidateText();

  // Someone breaks the database under the running control plane.
  rawExec(path_, "ALTER TABLE commits RENAME TO commits_gone");

  const auto r = s.commit("u", "");
  ASSERT_TRUE(std::holds_alternative<ConfigError>(r));
  const ConfigError& e = std::get<ConfigError>(r);
  EXPECT_EQ(e.line, 0u);
  EXPECT_EQ(e.word, "");
  EXPECT_EQ(e.message.rfind("configuration store " + path_ + ": ", 0), 0u) << e.message;
  EXPECT_NE(e.message.find("commits"), std::string::npos) << e.message;

  const auto rb = s.rollback(1);
  ASSERT_TRUE(rb.has_value());
  EXPECT_EQ(rb->message.rfind("configuration store " + path_ + ": ", 0), 0u) << rb->message;

  // Readers fall back to what they last saw and say why.
  EXPECT_EQ(s.active()->number, 1);
  EXPECT_NE(s.lastReadError().find("configuration store " + path_), std::string::npos);
  EXPECT_TRUE(s.commits().empty());
  EXPECT_EQ(s.compare(),
            "- set application shop service-set web facade 198.18.0.10 port 80\n"
            "+ set application shop service-set web facade 198.18.0.10 port 81\n");
  EXPECT_FALSE(s.lastReadError().empty());

  rawExec(path_, "ALTER TABLE commits_gone RENAME TO commits");
  EXPECT_EQ(s.commits().size(), 1u);
  EXPECT_EQ(s.lastReadError(), "");
  EXPECT_EQ(s.candidateText(), candidate);

  rawExec(path_, "ALTER TABLE candidate RENAME TO candidate_gone");
  const auto ed = s.edit("set application shop port 82");
  ASSERT_TRUE(ed.has_value());
  EXPECT_EQ(ed->line, 0u);
  EXPECT_NE(ed->message.find("candidate"), std::string::npos) << ed->message;
  EXPECT_EQ(s.candidateText(), candidate);  // the last one seen
  EXPECT_FALSE(s.lastReadError().empty());
  rawExec(path_, "ALTER TABLE candidate_gone RENAME TO candidate");
  EXPECT_EQ(s.candidateText(), candidate);
  EXPECT_EQ(s.lastReadError(), "");
}

TEST_F(StoreTest, ALockedDatabaseTimesOutWithAClearError) {
  ConfigStore& s = openStore();
  ASSERT_EQ(s.edit(kValid), std::nullopt);
  const std::string before = s.candidateText();
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  const auto start = std::chrono::steady_clock::now();
  const auto e = s.edit("set application shop port 81");
  const auto waited = std::chrono::steady_clock::now() - start;
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  ASSERT_TRUE(e.has_value());
  EXPECT_NE(e->message.find("locked"), std::string::npos) << e->message;
  EXPECT_GE(waited, std::chrono::milliseconds(ConfigStore::kBusyTimeoutMs - 100));
  EXPECT_EQ(s.candidateText(), before);
  EXPECT_EQ(s.edit("set application shop port 81"), std::nullopt);  // free again
}

TEST_F(StoreTest, CandidateThatDoesNotReadBackCanBeReplaced) {
  ConfigStore& s = openStore();
  ASSERT_EQ(s.edit(kValid), std::nullopt);
  ASSERT_EQ(commitNumber(s.commit("u", "")), 1);
  rawExec(path_, "UPDATE candidate SET text = 'set application shop colour blue'");

  EXPECT_EQ(s.candidate(), Config{});
  EXPECT_NE(s.lastReadError().find("does not read back"), std::string::npos);
  const auto e = s.edit("set application shop port 81");
  ASSERT_TRUE(e.has_value());
  EXPECT_NE(e->message.find("does not read back"), std::string::npos) << e->message;
  EXPECT_TRUE(std::holds_alternative<ConfigError>(s.commit("u", "")));
  EXPECT_EQ(s.commits().size(), 1u);
  // The ways out: load a file, or roll back.
  ASSERT_EQ(s.rollback(1), std::nullopt);
  EXPECT_EQ(s.candidate(), parseConfig(kValid).config);
  EXPECT_FALSE(s.candidateChanged());
}

}  // namespace
}  // namespace fulcrum
