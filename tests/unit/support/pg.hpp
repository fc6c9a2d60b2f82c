#pragma once
// A fresh PostgreSQL database per test, in the throw-away cluster that ctest
// starts (fixture `pg`, tests/support/pg_cluster.sh). The environment variable
// CHATD_TEST_PG_FILE names the file holding the cluster's conninfo; without it
// a PostgreSQL test fails (never skips): run it through ctest.
//
// Test setup code only: these helpers use blocking libpq and throw on failure.
// Each test runs in its own process (gtest_discover_tests); the databases it
// created are dropped when that process exits.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace chatd::test {

// The cluster's conninfo: "host=127.0.0.1 port=N user=postgres dbname=postgres".
inline std::string pg_cluster_conninfo() {
    const char* file = std::getenv("CHATD_TEST_PG_FILE");
    if (!file || !*file)
        throw std::runtime_error(
            "CHATD_TEST_PG_FILE is not set: run the PostgreSQL tests through ctest, which starts "
            "the test cluster (tests/support/pg_cluster.sh)");
    std::ifstream in(file);
    std::string conninfo;
    if (!std::getline(in, conninfo) || conninfo.empty())
        throw std::runtime_error(std::string("cannot read the test cluster's conninfo from ") +
                                 file + ": run the tests through ctest, which starts the cluster");
    return conninfo;
}

// Runs one statement on the cluster's `postgres` database, as its superuser.
inline void pg_admin(const std::string& sql) {
    std::unique_ptr<PGconn, decltype(&PQfinish)> conn(
        PQconnectdb((pg_cluster_conninfo() + " connect_timeout=10").c_str()), &PQfinish);
    if (PQstatus(conn.get()) != CONNECTION_OK)
        throw std::runtime_error(std::string("cannot connect to the test cluster: ") +
                                 PQerrorMessage(conn.get()));
    std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn.get(), sql.c_str()), &PQclear);
    auto status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        throw std::runtime_error(sql + ": " + PQresultErrorMessage(result.get()));
}

// The databases this process created, dropped at exit.
class PgTestDatabases {
public:
    static PgTestDatabases& instance() {
        static PgTestDatabases databases;
        return databases;
    }
    void add(std::string name) { names_.push_back(std::move(name)); }
    ~PgTestDatabases() {
        for (const auto& name : names_) {
            try {
                pg_admin("DROP DATABASE IF EXISTS \"" + name + "\" WITH (FORCE)");
            } catch (const std::exception&) {
                // The cluster is thrown away after the run anyway.
            }
        }
    }

private:
    std::vector<std::string> names_;
};

// A database name unique to this test and process, for PostgreSQL's 63-byte
// identifiers: t_<suite>_<test>_<pid>_<n>, lowercased.
inline std::string unique_pg_database_name() {
    static int counter = 0;
    std::string test = "unknown";
    if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info())
        test = std::string(info->test_suite_name()) + "_" + info->name();
    std::string suffix = "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
    std::string name = "t_";
    for (unsigned char c : test) name += std::isalnum(c) ? static_cast<char>(std::tolower(c)) : '_';
    name.resize(std::min(name.size(), 63 - suffix.size()));
    return name + suffix;
}

// Creates database `name` (dropped at exit) and returns its conninfo.
inline std::string create_pg_database(const std::string& name) {
    pg_admin("CREATE DATABASE \"" + name + "\"");
    PgTestDatabases::instance().add(name);
    return pg_cluster_conninfo() + " dbname=" + name;
}

// A new, empty database for the running test; returns its conninfo
// ("host=127.0.0.1 port=N user=postgres dbname=NAME").
inline std::string fresh_pg_database() {
    return create_pg_database(unique_pg_database_name());
}

// Runs one statement on the database of `conninfo` (beside the code under
// test); the first value of its first row, if any.
inline std::optional<std::string> pg_exec(const std::string& conninfo, const std::string& sql) {
    std::unique_ptr<PGconn, decltype(&PQfinish)> conn(
        PQconnectdb((conninfo + " connect_timeout=10").c_str()), &PQfinish);
    if (PQstatus(conn.get()) != CONNECTION_OK)
        throw std::runtime_error(std::string("cannot connect: ") + PQerrorMessage(conn.get()));
    std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn.get(), sql.c_str()), &PQclear);
    auto status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        throw std::runtime_error(sql + ": " + PQresultErrorMessage(result.get()));
    if (PQntuples(result.get()) == 0 || PQnfields(result.get()) == 0 ||
        PQgetisnull(result.get(), 0, 0))
        return std::nullopt;
    return std::string(PQgetvalue(result.get(), 0, 0));
}

// One keyword's value in a conninfo, as libpq reads it ("" when unset).
inline std::string pg_conninfo_value(const std::string& conninfo, std::string_view keyword) {
    char* error = nullptr;
    std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(
        PQconninfoParse(conninfo.c_str(), &error), &PQconninfoFree);
    PQfreemem(error);
    if (!options) throw std::runtime_error("a conninfo that does not parse");
    for (auto* o = options.get(); o->keyword; ++o)
        if (keyword == o->keyword && o->val) return o->val;
    return {};
}

// The URI form of a key=value conninfo: postgres://user@host:port/dbname.
inline std::string pg_uri(const std::string& conninfo) {
    return "postgres://" + pg_conninfo_value(conninfo, "user") + "@" +
           pg_conninfo_value(conninfo, "host") + ":" + pg_conninfo_value(conninfo, "port") + "/" +
           pg_conninfo_value(conninfo, "dbname");
}

}  // namespace chatd::test
