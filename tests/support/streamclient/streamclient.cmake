# berth-stream-client: the Go CRI streaming test client (main.go here), built in GOPATH
# mode against Debian's golang-github-moby-spdystream-dev and
# golang-github-gorilla-websocket-dev, without network. Included from tests/CMakeLists.txt.
#
# Sets BERTH_STREAM_CLIENT to the binary's path (empty when there is no Go), adds the
# target berth-stream-client (part of ALL), and, at the end of the including directory,
# gives berth_integration_tests STREAM_CLIENT_BINARY="<path>" and a dependency on it.

find_program(GO_EXECUTABLE go)
set(BERTH_STREAM_CLIENT_GOPATH "/usr/share/gocode" CACHE PATH "GOPATH holding github.com/moby/spdystream and github.com/gorilla/websocket")

if(GO_EXECUTABLE)
  set(BERTH_STREAM_CLIENT ${CMAKE_BINARY_DIR}/tests/berth-stream-client)
  set(_berth_stream_client_src ${CMAKE_CURRENT_LIST_DIR}/main.go)
  # The declared output is a stamp: with Ninja, the target berth-stream-client defined
  # from tests/ gets the alias tests/berth-stream-client, which would clash with a rule
  # declaring the binary itself ("multiple rules generate tests/berth-stream-client").
  set(_berth_stream_client_stamp ${CMAKE_BINARY_DIR}/gocache/berth-stream-client.stamp)
  add_custom_command(
    OUTPUT ${_berth_stream_client_stamp}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/tests ${CMAKE_BINARY_DIR}/gocache
    COMMAND ${CMAKE_COMMAND} -E env
            GO111MODULE=off
            GOPATH=${BERTH_STREAM_CLIENT_GOPATH}
            GOCACHE=${CMAKE_BINARY_DIR}/gocache
            GOFLAGS=
            GOPROXY=off
            CGO_ENABLED=0
            ${GO_EXECUTABLE} build -trimpath -o ${BERTH_STREAM_CLIENT} ${_berth_stream_client_src}
    COMMAND ${CMAKE_COMMAND} -E touch ${_berth_stream_client_stamp}
    DEPENDS ${_berth_stream_client_src}
    WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}
    COMMENT "Building berth-stream-client (Go)"
    VERBATIM)
  add_custom_target(berth-stream-client ALL DEPENDS ${_berth_stream_client_stamp})
else()
  set(BERTH_STREAM_CLIENT "")
  message(WARNING "go not found: berth-stream-client (CRI streaming tests) will not be built; install golang-go")
endif()

# Runs at the end of the including directory, so the order of this include and of
# add_executable(berth_integration_tests) does not matter.
function(_berth_stream_client_wire)
  if(BERTH_STREAM_CLIENT AND TARGET berth_integration_tests AND TARGET berth-stream-client)
    target_compile_definitions(berth_integration_tests PRIVATE STREAM_CLIENT_BINARY="${BERTH_STREAM_CLIENT}")
    add_dependencies(berth_integration_tests berth-stream-client)
  endif()
endfunction()
cmake_language(DEFER CALL _berth_stream_client_wire)
