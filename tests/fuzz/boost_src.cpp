// Boost.JSON and Boost.URL compiled into the fuzz build from their headers, so
// they carry the same coverage and sanitizer instrumentation as our code (the
// system's libboost_json/libboost_url are built without it).
#include <boost/json/src.hpp>
#include <boost/url/src.hpp>
