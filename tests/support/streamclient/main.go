// berth-stream-client: a test client for CRI streaming URLs (the ones berthd's
// Exec/Attach/PortForward return). It behaves on the wire like kubelet/kubectl's
// client side (client-go remotecommand and portforward), built on the same
// libraries: github.com/moby/spdystream for SPDY/3.1 and github.com/gorilla/websocket
// for WebSocket.
//
//	berth-stream-client exec|attach --url URL [--transport spdy|ws] [--protocol P]...
//	    [--stdin] [--stdout] [--stderr] [--tty] [--stdin-data S | --stdin-file F|-]
//	    [--keep-stdin-open] [--stdin-delay-ms N] [--resize WxH]... [--resize-delay-ms N]
//	    [--discard-stdout] [--result FILE] [--timeout-sec N] [--ping-ms N]
//	berth-stream-client portforward --url URL [--transport spdy|ws] [--protocol P]...
//	    --port P... [--listen ADDR]... [--send S] [--connections N] [--expect-bytes N]
//	    [--result FILE] [--timeout-sec N] [--ping-ms N]
//	berth-stream-client bench-exec [--transport spdy|ws] [--protocol P]... [--timeout-sec N]
//
// Every mode also takes --die-with-parent (PR_SET_PDEATHSIG=SIGKILL; the C++ wrapper
// passes it). Exit status: 0 when the session ran (whatever the remote exit code), 1
// for connection or protocol failures (also in the result's "error"), 2 for usage
// errors.
//
// What goes on the wire, as client-go does it:
//   - SPDY: POST <url path and query as given>, Connection: Upgrade, Upgrade: SPDY/3.1,
//     one X-Stream-Protocol-Version per offered protocol, Content-Length: 0. Streams
//     (header streamType) error, stdin, stdout, stderr (not with --tty), resize (--tty,
//     v3/v4), each created after the previous one's SYN_REPLY. A PING every --ping-ms
//     (default 5 s, like kubectl). At the end: RST_STREAM for every stream not yet
//     half-closed by us, GOAWAY, close.
//   - WebSocket: GET ws://...?stdin=&stdout=&stderr=&tty= (exec/attach) or ?port=P...
//     (portforward), the protocols as Sec-WebSocket-Protocol. A ping every --ping-ms;
//     the read deadline (12 periods + 1 s) moves only on pongs.
//   - Resizes are json.Encoder output ({"Width":W,"Height":H} plus a newline), one
//     write per size; stdin goes in pieces of at most 32 KiB.
//
// The error stream: v4/v5 a metav1.Status (exit_code from a NonZeroExitCode status,
// 0 for Success, null for other failures, whose message is in remote_error), older
// protocols plain text (remote_error; exit_code 0 when empty). Unlike client-go, an
// empty error stream on v4/v5 is not taken for success: exit_code stays null and
// remote_error says "no status on the error stream".
//
// --result FILE gets {"mode", "transport", "protocol", "status" (the JSON status or
// null), "status_raw", "exit_code", "remote_error", "stdout_bytes", "stderr_bytes",
// "stdin_bytes", "resizes_sent", "http_status", "http_body", "ws_close_code", "error",
// "duration_us", "responses": [{"port", "request_id", "data", "bytes", "error"}]}.
//
// Build (GOPATH mode, Debian's golang-github-moby-spdystream-dev and
// golang-github-gorilla-websocket-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=/tmp/gocache go build -trimpath -o berth-stream-client main.go
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/moby/spdystream"
)

const (
	protoV1          = "channel.k8s.io"
	protoV2          = "v2.channel.k8s.io"
	protoV3          = "v3.channel.k8s.io"
	protoV4          = "v4.channel.k8s.io"
	protoV5          = "v5.channel.k8s.io"
	protoV4Base64    = "v4.base64.channel.k8s.io"
	protoBase64      = "base64.channel.k8s.io"
	protoPortForward = "portforward.k8s.io"

	headerProtocolVersion = "X-Stream-Protocol-Version"
	headerStreamType      = "streamType"
	headerPort            = "port"
	headerRequestID       = "requestID"

	// client-go: createStreamResponseTimeout, the copy buffer size, the ping period of
	// kubectl's SPDY round tripper and of the WebSocket executor's heartbeat.
	streamReplyTimeout = 30 * time.Second
	copyBufferSize     = 32 * 1024
	defaultPingMs      = 5000

	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

var (
	defaultSPDYExecProtocols = []string{protoV4, protoV3, protoV2, protoV1}
	defaultWSExecProtocols   = []string{protoV5, protoV4, protoV4Base64, protoBase64, protoV1}
)

// ---------------------------------------------------------------------------------
// Result file and per-session state

type pfResponse struct {
	Port      int    `json:"port"`
	RequestID string `json:"request_id"`
	Data      string `json:"data"`
	Bytes     int    `json:"bytes"`
	Error     string `json:"error"`
}

type result struct {
	Mode        string          `json:"mode"`
	Transport   string          `json:"transport"`
	Protocol    string          `json:"protocol"`
	Status      json.RawMessage `json:"status"`
	StatusRaw   string          `json:"status_raw"`
	ExitCode    *int            `json:"exit_code"`
	RemoteError string          `json:"remote_error"`
	StdoutBytes int64           `json:"stdout_bytes"`
	StderrBytes int64           `json:"stderr_bytes"`
	StdinBytes  int64           `json:"stdin_bytes"`
	ResizesSent int64           `json:"resizes_sent"`
	HTTPStatus  int             `json:"http_status"`
	HTTPBody    string          `json:"http_body"`
	WSCloseCode int             `json:"ws_close_code"`
	Error       string          `json:"error"`
	DurationUs  int64           `json:"duration_us"`
	Responses   []pfResponse    `json:"responses"`
}

type state struct {
	mu      sync.Mutex
	res     result
	started time.Time

	stdoutBytes, stderrBytes, stdinBytes, resizes atomic.Int64

	connMu  sync.Mutex
	conn    net.Conn
	aborted bool
}

func newState(mode, transport string) *state {
	return &state{res: result{Mode: mode, Transport: transport, Responses: []pfResponse{}}, started: time.Now()}
}

func (s *state) update(f func(r *result)) {
	s.mu.Lock()
	f(&s.res)
	s.mu.Unlock()
}

func (s *state) snapshot() result {
	s.mu.Lock()
	r := s.res
	r.Responses = append([]pfResponse{}, s.res.Responses...)
	s.mu.Unlock()
	r.StdoutBytes = s.stdoutBytes.Load()
	r.StderrBytes = s.stderrBytes.Load()
	r.StdinBytes = s.stdinBytes.Load()
	r.ResizesSent = s.resizes.Load()
	r.DurationUs = time.Since(s.started).Microseconds()
	return r
}

// setConn registers the session's TCP connection so that a timeout can cut it.
func (s *state) setConn(c net.Conn) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	s.conn = c
	if s.aborted {
		c.Close()
	}
}

func (s *state) abort() {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	s.aborted = true
	if s.conn != nil {
		s.conn.Close()
	}
}

func writeResult(path string, s *state) {
	if path == "" {
		return
	}
	r := s.snapshot()
	b, err := json.MarshalIndent(&r, "", "  ")
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-stream-client: encoding result: %v\n", err)
		return
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "berth-stream-client: writing %s: %v\n", path, err)
	}
}

// runBounded runs fn, cutting the session's connection when timeout passes first.
func runBounded(s *state, timeout time.Duration, fn func() error) error {
	if timeout <= 0 {
		return fn()
	}
	done := make(chan error, 1)
	go func() { done <- fn() }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		// Cutting the connection ends the session's reads; give it a moment to record
		// what it got so far.
		s.abort()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		return fmt.Errorf("timed out after %s", timeout)
	}
}

// ---------------------------------------------------------------------------------
// Command line

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...interface{}) error {
	return &usageError{fmt.Sprintf(format, a...)}
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

type termSize struct {
	Width  uint16
	Height uint16
}

type common struct {
	url           string
	transport     string
	protocols     stringList
	resultFile    string
	timeoutSec    int
	timeoutSet    bool
	pingMs        int
	dieWithParent bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "url", "", "streaming URL (http://HOST:PORT/...)")
	fs.StringVar(&c.transport, "transport", "spdy", "spdy or ws")
	fs.Var(&c.protocols, "protocol", "protocol to offer (repeatable, in preference order)")
	fs.StringVar(&c.resultFile, "result", "", "write a JSON result here")
	fs.IntVar(&c.timeoutSec, "timeout-sec", 60, "bound on the whole session")
	fs.IntVar(&c.pingMs, "ping-ms", defaultPingMs, "SPDY ping / WebSocket heartbeat period, 0 = off")
	fs.BoolVar(&c.dieWithParent, "die-with-parent", false, "get SIGKILL when the parent thread exits")
}

func (c *common) check(fs *flag.FlagSet, needURL bool) error {
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "timeout-sec" {
			c.timeoutSet = true
		}
	})
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if needURL && c.url == "" {
		return usagef("--url is required")
	}
	if c.transport != "spdy" && c.transport != "ws" {
		return usagef("--transport must be spdy or ws, not %q", c.transport)
	}
	if c.timeoutSec < 0 || c.pingMs < 0 {
		return usagef("--timeout-sec and --ping-ms must not be negative")
	}
	if c.dieWithParent {
		syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0)
		if os.Getppid() == 1 {
			os.Exit(exitFailure)
		}
	}
	return nil
}

func (c *common) timeout() time.Duration { return time.Duration(c.timeoutSec) * time.Second }
func (c *common) ping() time.Duration    { return time.Duration(c.pingMs) * time.Millisecond }

type execOpts struct {
	common
	stdin, stdout, stderr, tty bool
	stdinData                  string
	stdinDataSet               bool
	stdinFile                  string
	keepStdinOpen              bool
	stdinDelayMs               int
	resizeArgs                 stringList
	resizes                    []termSize
	resizeDelayMs              int
	discardStdout              bool
	discardStderr              bool

	outW, errW io.Writer
}

func parseExec(mode string, args []string) (*execOpts, error) {
	o := &execOpts{outW: os.Stdout, errW: os.Stderr}
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	o.common.register(fs)
	fs.BoolVar(&o.stdin, "stdin", false, "open a stdin stream")
	fs.BoolVar(&o.stdout, "stdout", false, "open a stdout stream")
	fs.BoolVar(&o.stderr, "stderr", false, "open a stderr stream (never with --tty)")
	fs.BoolVar(&o.tty, "tty", false, "terminal session (resize stream, no stderr)")
	fs.StringVar(&o.stdinData, "stdin-data", "", "data to send on stdin")
	fs.StringVar(&o.stdinFile, "stdin-file", "", "file to send on stdin (- = this tool's stdin)")
	fs.BoolVar(&o.keepStdinOpen, "keep-stdin-open", false, "do not half-close stdin after sending")
	fs.IntVar(&o.stdinDelayMs, "stdin-delay-ms", 0, "wait before sending stdin")
	fs.Var(&o.resizeArgs, "resize", "terminal size WxH to send (repeatable)")
	fs.IntVar(&o.resizeDelayMs, "resize-delay-ms", 0, "pause between two resizes")
	fs.BoolVar(&o.discardStdout, "discard-stdout", false, "count stdout bytes, do not print them")
	if err := fs.Parse(args); err != nil {
		return nil, &usageError{err.Error()}
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "stdin-data" {
			o.stdinDataSet = true
		}
	})
	if err := o.common.check(fs, true); err != nil {
		return nil, err
	}
	if o.stdinDataSet && o.stdinFile != "" {
		return nil, usagef("--stdin-data and --stdin-file exclude each other")
	}
	if (o.stdinDataSet || o.stdinFile != "" || o.keepStdinOpen || o.stdinDelayMs != 0) && !o.stdin {
		return nil, usagef("--stdin-data, --stdin-file, --keep-stdin-open and --stdin-delay-ms need --stdin")
	}
	if !o.stdin && !o.stdout && !o.stderr {
		return nil, usagef("at least one of --stdin, --stdout and --stderr is required")
	}
	if len(o.resizeArgs) > 0 && !o.tty {
		return nil, usagef("--resize needs --tty")
	}
	if o.stdinDelayMs < 0 || o.resizeDelayMs < 0 {
		return nil, usagef("delays must not be negative")
	}
	for _, r := range o.resizeArgs {
		sz, err := parseSize(r)
		if err != nil {
			return nil, err
		}
		o.resizes = append(o.resizes, sz)
	}
	if o.tty {
		// Like kubectl: a terminal has no separate stderr.
		o.stderr = false
	}
	if o.stdinFile != "" && o.stdinFile != "-" {
		if _, err := os.Stat(o.stdinFile); err != nil {
			return nil, usagef("--stdin-file: %v", err)
		}
	}
	return o, nil
}

func parseSize(s string) (termSize, error) {
	w, h, ok := strings.Cut(strings.ToLower(s), "x")
	wi, err1 := strconv.ParseUint(w, 10, 16)
	hi, err2 := strconv.ParseUint(h, 10, 16)
	if !ok || err1 != nil || err2 != nil {
		return termSize{}, usagef("--resize wants WxH, got %q", s)
	}
	return termSize{Width: uint16(wi), Height: uint16(hi)}, nil
}

// stdinSource gives what to send on stdin: nil for nothing.
func (o *execOpts) stdinSource() (io.Reader, func(), error) {
	switch {
	case o.stdinDataSet:
		return strings.NewReader(o.stdinData), func() {}, nil
	case o.stdinFile == "-":
		return os.Stdin, func() {}, nil
	case o.stdinFile != "":
		f, err := os.Open(o.stdinFile)
		if err != nil {
			return nil, func() {}, err
		}
		return f, func() { f.Close() }, nil
	}
	return nil, func() {}, nil
}

// query is what client-go puts on a WebSocket exec/attach URL (the command aside).
func (o *execOpts) query() url.Values {
	q := url.Values{}
	q.Set("stdin", strconv.FormatBool(o.stdin))
	q.Set("stdout", strconv.FormatBool(o.stdout))
	q.Set("stderr", strconv.FormatBool(o.stderr))
	q.Set("tty", strconv.FormatBool(o.tty))
	return q
}

type pfOpts struct {
	common
	portArgs    stringList
	ports       []int
	listens     stringList
	send        string
	sendSet     bool
	connections int
	expectBytes int
}

func parsePortForward(args []string) (*pfOpts, error) {
	o := &pfOpts{}
	fs := flag.NewFlagSet("portforward", flag.ContinueOnError)
	o.common.register(fs)
	fs.Var(&o.portArgs, "port", "remote port (repeatable)")
	fs.Var(&o.listens, "listen", "local address to listen on, one per --port")
	fs.StringVar(&o.send, "send", "", "one-shot: data to send on each connection")
	fs.IntVar(&o.connections, "connections", 1, "one-shot SPDY: concurrent connections per port")
	fs.IntVar(&o.expectBytes, "expect-bytes", -1, "one-shot ws: a port is done after this many bytes (-1: read until the server closes)")
	if err := fs.Parse(args); err != nil {
		return nil, &usageError{err.Error()}
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "send" {
			o.sendSet = true
		}
	})
	if err := o.common.check(fs, true); err != nil {
		return nil, err
	}
	if len(o.portArgs) == 0 {
		return nil, usagef("--port is required")
	}
	for _, p := range o.portArgs {
		n, err := strconv.Atoi(p)
		// 0 passes: whether a port is acceptable is the server's call.
		if err != nil || n < 0 || n > 65535 {
			return nil, usagef("bad --port %q", p)
		}
		o.ports = append(o.ports, n)
	}
	switch {
	case len(o.listens) > 0:
		if len(o.listens) != len(o.ports) {
			return nil, usagef("give one --listen per --port (%d ports, %d addresses)", len(o.ports), len(o.listens))
		}
		if o.sendSet {
			return nil, usagef("--send is for one-shot mode, not with --listen")
		}
		if o.transport != "spdy" {
			return nil, usagef("--listen needs --transport spdy")
		}
	case !o.sendSet:
		return nil, usagef("give --listen ADDR or --send DATA")
	}
	if o.connections < 1 {
		return nil, usagef("--connections must be at least 1")
	}
	if o.connections > 1 && o.transport == "ws" {
		return nil, usagef("--connections > 1 needs --transport spdy (a WebSocket carries one connection per port)")
	}
	return o, nil
}

// ---------------------------------------------------------------------------------
// Helpers

// readerOnly hides WriterTo/ReaderFrom so io.Copy goes through a 32 KiB buffer like
// client-go's copies do (one data frame or message per read).
type readerOnly struct{ io.Reader }

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	if c.w == nil {
		return len(p), nil
	}
	return c.w.Write(p)
}

// pump reads src in chunks of at most 32 KiB and hands each to write.
func pump(src io.Reader, write func([]byte) error, counter *atomic.Int64) error {
	buf := make([]byte, copyBufferSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if werr := write(buf[:n]); werr != nil {
				return werr
			}
			if counter != nil {
				counter.Add(int64(n))
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func sessionURL(raw string, ws bool, extra url.Values) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bad --url: %v", err)
	}
	switch u.Scheme {
	case "http", "ws":
		if ws {
			u.Scheme = "ws"
		} else {
			u.Scheme = "http"
		}
	case "https", "wss":
		return nil, fmt.Errorf("bad --url %q: TLS is not supported", raw)
	default:
		return nil, fmt.Errorf("bad --url %q: want http://HOST:PORT/PATH", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("bad --url %q: no host", raw)
	}
	if len(extra) > 0 {
		q := u.Query()
		for k, vs := range extra {
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		u.RawQuery = q.Encode()
	}
	return u, nil
}

func offered(p string, list []string) bool {
	for _, x := range list {
		if x == p {
			return true
		}
	}
	return false
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// ---------------------------------------------------------------------------------
// Remote-command status (error stream / channel 3)

type k8sStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
	Details *struct {
		Causes []struct {
			Type    string `json:"reason"`
			Message string `json:"message"`
		} `json:"causes"`
	} `json:"details"`
}

func execProtocolVersion(p string) int {
	switch p {
	case protoV5:
		return 5
	case protoV4, protoV4Base64:
		return 4
	case protoV3:
		return 3
	case protoV2:
		return 2
	}
	return 1
}

// finishStatus decodes what the error stream carried, as client-go's error decoders
// do: returns an error only for protocol errors; remote failures land in the result.
func finishStatus(s *state, version int, raw []byte) error {
	text := string(raw)
	setExit := func(code int) { s.update(func(r *result) { r.ExitCode = &code }) }
	s.update(func(r *result) { r.StatusRaw = text })
	if version < 4 {
		if len(raw) == 0 {
			setExit(0)
		} else {
			s.update(func(r *result) { r.RemoteError = text })
		}
		return nil
	}
	if len(raw) == 0 {
		// client-go takes this for success; a v4/v5 server always sends a Status,
		// so a missing one is reported rather than read as exit code 0.
		s.update(func(r *result) { r.RemoteError = "no status on the error stream" })
		return nil
	}
	var st k8sStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("error stream protocol error: %v in %q", err, text)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err == nil {
		s.update(func(r *result) { r.Status = json.RawMessage(compact.Bytes()) })
	}
	switch st.Status {
	case "Success":
		setExit(0)
		return nil
	case "Failure":
		if st.Reason == "NonZeroExitCode" {
			if st.Details == nil {
				return errors.New("error stream protocol error: details must be set")
			}
			for _, c := range st.Details.Causes {
				if c.Type != "ExitCode" {
					continue
				}
				rc, err := strconv.ParseUint(c.Message, 10, 8)
				if err != nil {
					return fmt.Errorf("error stream protocol error: invalid exit code value %q", c.Message)
				}
				setExit(int(rc))
				s.update(func(r *result) { r.RemoteError = fmt.Sprintf("command terminated with exit code %d", rc) })
				return nil
			}
			return errors.New("error stream protocol error: no ExitCode cause given")
		}
		s.update(func(r *result) { r.RemoteError = st.Message })
		return nil
	}
	return fmt.Errorf("error stream protocol error: unknown status %q", st.Status)
}

// ---------------------------------------------------------------------------------
// SPDY

// bufferedConn reads through the bufio.Reader that parsed the upgrade response, so
// frames the server sent right behind it are not lost.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

type spdyConn struct {
	conn *spdystream.Connection

	mu      sync.Mutex
	streams []*spdystream.Stream
}

// dialSPDY upgrades POST <url> to SPDY/3.1 the way client-go's SpdyRoundTripper
// does and returns the connection and the negotiated protocol.
func dialSPDY(s *state, u *url.URL, protocols []string, ping time.Duration) (*spdyConn, string, error) {
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	raw, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return nil, "", fmt.Errorf("dial %s: %v", addr, err)
	}
	s.setConn(raw)
	req, err := http.NewRequest(http.MethodPost, u.String(), nil)
	if err != nil {
		raw.Close()
		return nil, "", err
	}
	req.Header.Set("User-Agent", "berth-stream-client")
	req.Header.Add("Connection", "Upgrade")
	req.Header.Add("Upgrade", "SPDY/3.1")
	for _, p := range protocols {
		req.Header.Add(headerProtocolVersion, p)
	}
	if err := req.Write(raw); err != nil {
		raw.Close()
		return nil, "", fmt.Errorf("sending upgrade request: %v", err)
	}
	br := bufio.NewReader(raw)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		raw.Close()
		return nil, "", fmt.Errorf("reading upgrade response: %v", err)
	}
	s.update(func(r *result) { r.HTTPStatus = resp.StatusCode })
	connection := strings.ToLower(resp.Header.Get("Connection"))
	upgrade := strings.ToLower(resp.Header.Get("Upgrade"))
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.Contains(connection, "upgrade") ||
		!strings.Contains(upgrade, "spdy/3.1") {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		raw.Close()
		s.update(func(r *result) { r.HTTPBody = string(body) })
		return nil, "", fmt.Errorf("unable to upgrade connection: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	sc, err := spdystream.NewConnection(&bufferedConn{Conn: raw, r: br}, false)
	if err != nil {
		raw.Close()
		return nil, "", err
	}
	go sc.Serve(spdystream.NoOpStreamHandler)
	c := &spdyConn{conn: sc}
	if ping > 0 {
		go c.sendPings(ping)
	}
	return c, resp.Header.Get(headerProtocolVersion), nil
}

func (c *spdyConn) sendPings(period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-c.conn.CloseChan():
			return
		case <-t.C:
		}
		c.conn.Ping() // failures are fine: CloseChan tells when the connection is gone
	}
}

// create opens a stream and waits for its SYN_REPLY.
func (c *spdyConn) create(h http.Header) (*spdystream.Stream, error) {
	st, err := c.conn.CreateStream(h, nil, false)
	if err != nil {
		return nil, fmt.Errorf("creating %s stream: %v", h.Get(headerStreamType), err)
	}
	c.mu.Lock()
	c.streams = append(c.streams, st)
	c.mu.Unlock()
	if err := st.WaitTimeout(streamReplyTimeout); err != nil {
		return nil, fmt.Errorf("waiting for the reply to the %s stream: %v", h.Get(headerStreamType), err)
	}
	return st, nil
}

// close resets every stream, then sends GOAWAY and closes the TCP connection, like
// client-go's connection.Close.
func (c *spdyConn) close() {
	c.mu.Lock()
	for _, st := range c.streams {
		st.Reset()
	}
	c.streams = nil
	c.mu.Unlock()
	c.conn.Close()
	select {
	case <-c.conn.CloseChan():
	case <-time.After(2 * time.Second):
	}
}

func streamHeader(kind string) http.Header {
	h := http.Header{}
	h.Set(headerStreamType, kind)
	return h
}

func execSPDY(o *execOpts, s *state) error {
	// No query: kubelet proxies kubectl's upgrade request to the CRI URL as it is.
	u, err := sessionURL(o.url, false, nil)
	if err != nil {
		return err
	}
	protocols := []string(o.protocols)
	if len(protocols) == 0 {
		protocols = defaultSPDYExecProtocols
	}
	c, proto, err := dialSPDY(s, u, protocols, o.ping())
	if err != nil {
		return err
	}
	defer c.close()
	s.update(func(r *result) { r.Protocol = proto })
	if proto != "" && !offered(proto, protocols) {
		return fmt.Errorf("server chose protocol %q, which was not offered", proto)
	}
	if proto == protoV5 {
		return fmt.Errorf("server chose %s, which is WebSocket only", proto)
	}
	version := execProtocolVersion(proto) // "" falls back to channel.k8s.io, like client-go

	errStream, err := c.create(streamHeader("error"))
	if err != nil {
		return err
	}
	var stdinS, stdoutS, stderrS, resizeS *spdystream.Stream
	if o.stdin {
		if stdinS, err = c.create(streamHeader("stdin")); err != nil {
			return err
		}
	}
	if o.stdout {
		if stdoutS, err = c.create(streamHeader("stdout")); err != nil {
			return err
		}
	}
	if o.stderr {
		if stderrS, err = c.create(streamHeader("stderr")); err != nil {
			return err
		}
	}
	if o.tty && version >= 3 {
		if resizeS, err = c.create(streamHeader("resize")); err != nil {
			return err
		}
	}

	type readResult struct {
		data []byte
		err  error
	}
	errCh := make(chan readResult, 1)
	go func() {
		b, err := io.ReadAll(errStream)
		errCh <- readResult{b, err}
	}()
	if resizeS != nil {
		go sendResizes(o, s, func(b []byte) error { _, err := resizeS.Write(b); return err })
	}
	if stdinS != nil {
		var once sync.Once
		closeStdin := func() { once.Do(func() { stdinS.Close() }) }
		go func() {
			if o.stdinDelayMs > 0 {
				time.Sleep(time.Duration(o.stdinDelayMs) * time.Millisecond)
			}
			src, done, err := o.stdinSource()
			if err == nil && src != nil {
				pump(src, func(b []byte) error { _, err := stdinS.Write(b); return err }, &s.stdinBytes)
			}
			done()
			if !o.keepStdinOpen {
				closeStdin()
			}
		}()
		// Like client-go: read stdin until the server closes it, then close our side.
		go func() {
			io.Copy(io.Discard, stdinS)
			closeStdin()
		}()
	}
	var wg sync.WaitGroup
	copyOut := func(st *spdystream.Stream, w io.Writer, discard bool, n *atomic.Int64) {
		defer wg.Done()
		if discard {
			w = nil
		}
		io.CopyBuffer(countingWriter{w, n}, readerOnly{st}, make([]byte, copyBufferSize))
	}
	if stdoutS != nil {
		wg.Add(1)
		go copyOut(stdoutS, o.outW, o.discardStdout, &s.stdoutBytes)
	}
	if stderrS != nil {
		wg.Add(1)
		go copyOut(stderrS, o.errW, o.discardStderr, &s.stderrBytes)
	}
	wg.Wait()
	er := <-errCh
	if er.err != nil {
		return fmt.Errorf("reading the error stream: %v", er.err)
	}
	return finishStatus(s, version, er.data)
}

// sendResizes writes each --resize as JSON (json.Encoder, so newline-terminated, one
// write per size) like client-go's handleResizes.
func sendResizes(o *execOpts, s *state, write func([]byte) error) {
	for i, sz := range o.resizes {
		if i > 0 && o.resizeDelayMs > 0 {
			time.Sleep(time.Duration(o.resizeDelayMs) * time.Millisecond)
		}
		var b bytes.Buffer
		json.NewEncoder(&b).Encode(sz)
		if err := write(b.Bytes()); err != nil {
			return
		}
		s.resizes.Add(1)
	}
}

// ---------------------------------------------------------------------------------
// WebSocket

type wsConn struct {
	c      *websocket.Conn
	base64 bool
	wmu    sync.Mutex
	stop   chan struct{}
	once   sync.Once
}

func isBase64Protocol(p string) bool { return p == protoV4Base64 || p == protoBase64 }

func dialWS(s *state, u *url.URL, protocols []string, ping time.Duration) (*wsConn, string, error) {
	d := websocket.Dialer{
		Subprotocols:     protocols,
		HandshakeTimeout: 30 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			c, err := nd.DialContext(ctx, network, addr)
			if err == nil {
				s.setConn(c)
			}
			return c, err
		},
	}
	c, resp, err := d.Dial(u.String(), http.Header{"User-Agent": {"berth-stream-client"}})
	if resp != nil {
		s.update(func(r *result) { r.HTTPStatus = resp.StatusCode })
	}
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			s.update(func(r *result) { r.HTTPBody = string(body) })
			return nil, "", fmt.Errorf("unable to upgrade connection: %s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
		return nil, "", fmt.Errorf("websocket dial %s: %v", u.Host, err)
	}
	proto := c.Subprotocol()
	if proto == "" || !offered(proto, protocols) {
		c.Close()
		return nil, proto, fmt.Errorf("server chose subprotocol %q, offered %v", proto, protocols)
	}
	w := &wsConn{c: c, base64: isBase64Protocol(proto), stop: make(chan struct{})}
	if ping > 0 {
		// client-go's heartbeat: ping every period; a read deadline of 12 periods + 1s
		// that only pongs push back.
		deadline := 12*ping + time.Second
		c.SetReadDeadline(time.Now().Add(deadline))
		c.SetPongHandler(func(string) error { return c.SetReadDeadline(time.Now().Add(deadline)) })
		go func() {
			t := time.NewTicker(ping)
			defer t.Stop()
			for {
				select {
				case <-w.stop:
					return
				case <-t.C:
					if err := c.WriteControl(websocket.PingMessage, nil, time.Now().Add(deadline)); err != nil {
						return
					}
				}
			}
		}()
	}
	return w, proto, nil
}

func (w *wsConn) send(ch byte, data []byte) error {
	var mt int
	var buf []byte
	if w.base64 {
		mt = websocket.TextMessage
		buf = make([]byte, 1+base64.StdEncoding.EncodedLen(len(data)))
		buf[0] = '0' + ch
		base64.StdEncoding.Encode(buf[1:], data)
	} else {
		mt = websocket.BinaryMessage
		buf = make([]byte, 1+len(data))
		buf[0] = ch
		copy(buf[1:], data)
	}
	return w.sendRaw(mt, buf)
}

func (w *wsConn) sendRaw(mt int, buf []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return w.c.WriteMessage(mt, buf)
}

// protocolError is a message the client cannot accept (as opposed to the connection
// ending).
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "protocol error: " + e.msg }

func protoErrorf(format string, a ...interface{}) error {
	return &protocolError{fmt.Sprintf(format, a...)}
}

// classifyReadError sorts out why reading stopped: the server ending the session
// (returned as end) or a failure of the session (returned as failure).
func classifyReadError(err error) (end, failure error) {
	var pe *protocolError
	switch {
	case errors.As(err, &pe):
		return nil, err
	case cleanClose(err):
		return err, nil
	}
	return err, fmt.Errorf("reading: %v", err)
}

// read returns the next message as (channel, data); empty data = ignorable.
func (w *wsConn) read() (byte, []byte, error) {
	mt, msg, err := w.c.ReadMessage()
	if err != nil {
		return 0, nil, err
	}
	if len(msg) == 0 {
		return 0, nil, nil
	}
	if w.base64 {
		if mt != websocket.TextMessage {
			return 0, nil, protoErrorf("binary message on a base64 protocol")
		}
		if msg[0] < '0' || msg[0] > '9' {
			return 0, nil, protoErrorf("bad channel character %q", msg[0])
		}
		data, err := base64.StdEncoding.DecodeString(string(msg[1:]))
		if err != nil {
			return 0, nil, protoErrorf("bad base64 on channel %c: %v", msg[0], err)
		}
		return msg[0] - '0', data, nil
	}
	if mt != websocket.BinaryMessage {
		return 0, nil, protoErrorf("text message on a binary protocol")
	}
	return msg[0], msg[1:], nil
}

// finish records how the server ended the connection and closes ours.
func (w *wsConn) finish(s *state, readErr error) {
	w.once.Do(func() {
		close(w.stop)
		code := 0
		var ce *websocket.CloseError
		if errors.As(readErr, &ce) {
			code = ce.Code
		}
		if code != 0 {
			s.update(func(r *result) { r.WSCloseCode = code })
		}
		w.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
			time.Now().Add(time.Second))
		w.c.Close()
	})
}

// cleanClose says whether a read error is the server ending the session (a close
// frame or the connection going away), as opposed to a local failure.
func cleanClose(err error) bool {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func execWS(o *execOpts, s *state) error {
	u, err := sessionURL(o.url, true, o.query())
	if err != nil {
		return err
	}
	protocols := []string(o.protocols)
	if len(protocols) == 0 {
		protocols = defaultWSExecProtocols
	}
	w, proto, err := dialWS(s, u, protocols, o.ping())
	s.update(func(r *result) { r.Protocol = proto })
	if err != nil {
		return err
	}
	version := execProtocolVersion(proto)

	if o.tty && len(o.resizes) > 0 {
		go sendResizes(o, s, func(b []byte) error { return w.send(4, b) })
	}
	if o.stdin {
		go func() {
			if o.stdinDelayMs > 0 {
				time.Sleep(time.Duration(o.stdinDelayMs) * time.Millisecond)
			}
			src, done, err := o.stdinSource()
			if err == nil && src != nil {
				pump(src, func(b []byte) error { return w.send(0, b) }, &s.stdinBytes)
			}
			done()
			if !o.keepStdinOpen && version == 5 {
				w.sendRaw(websocket.BinaryMessage, []byte{255, 0}) // v5 CLOSE of channel 0
			}
		}()
	}
	var errBuf bytes.Buffer
	var protoErr error
	var readErr error
	stdout := countingWriter{o.outW, &s.stdoutBytes}
	if o.discardStdout {
		stdout.w = nil
	}
	stderr := countingWriter{o.errW, &s.stderrBytes}
	if o.discardStderr {
		stderr.w = nil
	}
	for {
		ch, data, err := w.read()
		if err != nil {
			readErr, protoErr = classifyReadError(err)
			break
		}
		if len(data) == 0 {
			continue
		}
		switch ch {
		case 0: // nothing comes from the server on stdin
		case 1:
			stdout.Write(data)
		case 2:
			stderr.Write(data)
		case 3:
			errBuf.Write(data)
		default:
			protoErr = protoErrorf("data on unknown channel %d", ch)
		}
		if protoErr != nil {
			break
		}
	}
	w.finish(s, readErr)
	if protoErr != nil {
		return protoErr
	}
	return finishStatus(s, version, errBuf.Bytes())
}

func runExec(o *execOpts, s *state) error {
	if o.transport == "ws" {
		return execWS(o, s)
	}
	return execSPDY(o, s)
}

// ---------------------------------------------------------------------------------
// Port forward

// pfStreams creates the error stream (closed at once: only read) and the data stream
// of one forwarded connection, as kubectl's handleConnection does. errText receives
// what the error stream carried once the server closes it.
func (c *spdyConn) pfStreams(port int, requestID string) (*spdystream.Stream, <-chan string, error) {
	h := http.Header{}
	h.Set(headerStreamType, "error")
	h.Set(headerPort, strconv.Itoa(port))
	h.Set(headerRequestID, requestID)
	errStream, err := c.create(h.Clone())
	if err != nil {
		return nil, nil, err
	}
	errStream.Close()
	errText := make(chan string, 1)
	go func() {
		b, err := io.ReadAll(errStream)
		if err != nil {
			errText <- fmt.Sprintf("error reading from error stream: %v", err)
			return
		}
		errText <- string(b)
	}()
	h.Set(headerStreamType, "data")
	data, err := c.create(h)
	if err != nil {
		return nil, nil, err
	}
	return data, errText, nil
}

func checkPortForwardProtocol(proto string, protocols []string) error {
	if !offered(proto, protocols) {
		return fmt.Errorf("unable to negotiate protocol: client supports %v, server returned %q", protocols, proto)
	}
	return nil
}

func pfSPDYOneShot(o *pfOpts, s *state) error {
	u, err := sessionURL(o.url, false, nil)
	if err != nil {
		return err
	}
	protocols := []string(o.protocols)
	if len(protocols) == 0 {
		protocols = []string{protoPortForward}
	}
	c, proto, err := dialSPDY(s, u, protocols, o.ping())
	if err != nil {
		return err
	}
	defer c.close()
	s.update(func(r *result) { r.Protocol = proto })
	if err := checkPortForwardProtocol(proto, protocols); err != nil {
		return err
	}
	var nextID atomic.Int64
	responses := make([]pfResponse, len(o.ports)*o.connections)
	errs := make([]error, len(responses))
	var wg sync.WaitGroup
	for pi, port := range o.ports {
		for k := 0; k < o.connections; k++ {
			idx := pi*o.connections + k
			wg.Add(1)
			go func(port int) {
				defer wg.Done()
				id := strconv.FormatInt(nextID.Add(1)-1, 10)
				r := &responses[idx]
				r.Port, r.RequestID = port, id
				data, errText, err := c.pfStreams(port, id)
				if err != nil {
					r.Error = err.Error()
					errs[idx] = fmt.Errorf("request %s: %v", id, err)
					return
				}
				got := make(chan []byte, 1)
				go func() {
					b, _ := io.ReadAll(readerOnly{data})
					got <- b
				}()
				pump(strings.NewReader(o.send), func(b []byte) error { _, err := data.Write(b); return err }, nil)
				data.Close()
				b := <-got
				r.Data, r.Bytes = string(b), len(b)
				r.Error = <-errText
			}(port)
		}
	}
	wg.Wait()
	s.update(func(r *result) { r.Responses = responses })
	var msgs []string
	for _, e := range errs {
		if e != nil {
			msgs = append(msgs, e.Error())
		}
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}

func pfSPDYListen(o *pfOpts, s *state) error {
	u, err := sessionURL(o.url, false, nil)
	if err != nil {
		return err
	}
	protocols := []string(o.protocols)
	if len(protocols) == 0 {
		protocols = []string{protoPortForward}
	}
	c, proto, err := dialSPDY(s, u, protocols, o.ping())
	if err != nil {
		return err
	}
	defer c.close()
	s.update(func(r *result) { r.Protocol = proto })
	if err := checkPortForwardProtocol(proto, protocols); err != nil {
		return err
	}
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for _, addr := range o.listens {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %v", addr, err)
		}
		listeners = append(listeners, l)
	}
	for _, l := range listeners {
		fmt.Fprintf(os.Stdout, "listening %d\n", l.Addr().(*net.TCPAddr).Port)
	}
	var nextID atomic.Int64
	for i, l := range listeners {
		go func(l net.Listener, port int) {
			for {
				local, err := l.Accept()
				if err != nil {
					return
				}
				id := strconv.FormatInt(nextID.Add(1)-1, 10)
				go forwardLocal(c, local, port, id)
			}
		}(l, o.ports[i])
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
		return nil
	case <-c.conn.CloseChan():
		return errors.New("lost connection to the streaming server")
	}
}

// forwardLocal bridges one accepted local connection, like kubectl's handleConnection.
func forwardLocal(c *spdyConn, local net.Conn, port int, id string) {
	defer local.Close()
	data, errText, err := c.pfStreams(port, id)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error %s %s\n", id, oneLine(err.Error()))
		return
	}
	remoteDone := make(chan struct{})
	localError := make(chan struct{})
	go func() {
		io.Copy(local, readerOnly{data})
		close(remoteDone)
	}()
	go func() {
		defer data.Close()
		if _, err := io.CopyBuffer(data, readerOnly{local}, make([]byte, copyBufferSize)); err != nil {
			close(localError)
		}
	}()
	select {
	case <-remoteDone:
	case <-localError:
	}
	if msg := <-errText; msg != "" {
		fmt.Fprintf(os.Stderr, "error %s %s\n", id, oneLine(msg))
	}
}

func pfWS(o *pfOpts, s *state) error {
	q := url.Values{}
	for _, p := range o.ports {
		q.Add("port", strconv.Itoa(p))
	}
	u, err := sessionURL(o.url, true, q)
	if err != nil {
		return err
	}
	protocols := []string(o.protocols)
	if len(protocols) == 0 {
		protocols = []string{protoV4}
	}
	w, proto, err := dialWS(s, u, protocols, o.ping())
	s.update(func(r *result) { r.Protocol = proto })
	if err != nil {
		return err
	}
	n := len(o.ports)
	type channel struct {
		sawPort bool
		buf     bytes.Buffer
	}
	chans := make([]channel, 2*n)
	go func() {
		for i := range o.ports {
			ch := byte(2 * i)
			pump(strings.NewReader(o.send), func(b []byte) error { return w.send(ch, b) }, &s.stdinBytes)
		}
	}()
	allDone := func() bool {
		if o.expectBytes < 0 {
			return false
		}
		for i := 0; i < n; i++ {
			if !chans[2*i].sawPort || !chans[2*i+1].sawPort || chans[2*i].buf.Len() < o.expectBytes {
				return false
			}
		}
		return true
	}
	var protoErr, readErr error
	for !allDone() {
		ch, data, err := w.read()
		if err != nil {
			readErr, protoErr = classifyReadError(err)
			break
		}
		if len(data) == 0 {
			continue
		}
		if int(ch) >= 2*n {
			protoErr = protoErrorf("data on channel %d, only %d ports", ch, n)
			break
		}
		c := &chans[ch]
		want := o.ports[ch/2]
		if !c.sawPort {
			if len(data) < 2 {
				protoErr = protoErrorf("channel %d: first message has %d bytes, want the 2-byte port", ch, len(data))
				break
			}
			if got := int(binary.LittleEndian.Uint16(data)); got != want {
				protoErr = protoErrorf("channel %d: port prefix %d, want %d", ch, got, want)
				break
			}
			c.sawPort = true
			data = data[2:]
		}
		c.buf.Write(data)
		if ch%2 == 0 {
			s.stdoutBytes.Add(int64(len(data)))
		}
	}
	w.finish(s, readErr)
	responses := make([]pfResponse, n)
	for i, p := range o.ports {
		d := chans[2*i].buf.Bytes()
		responses[i] = pfResponse{Port: p, Data: string(d), Bytes: len(d), Error: chans[2*i+1].buf.String()}
		if protoErr == nil && (!chans[2*i].sawPort || !chans[2*i+1].sawPort) {
			protoErr = protoErrorf("no port prefix on channel %d or %d", 2*i, 2*i+1)
		}
	}
	s.update(func(r *result) { r.Responses = responses })
	return protoErr
}

// ---------------------------------------------------------------------------------
// Modes

func fail(s *state, resultFile string, err error) int {
	s.update(func(r *result) {
		if r.Error == "" {
			r.Error = err.Error()
		}
	})
	writeResult(resultFile, s)
	fmt.Fprintf(os.Stderr, "berth-stream-client: %v\n", err)
	return exitFailure
}

func cmdExec(mode string, args []string) int {
	o, err := parseExec(mode, args)
	if err != nil {
		return usage(err)
	}
	s := newState(mode, o.transport)
	err = runBounded(s, o.timeout(), func() error { return runExec(o, s) })
	if err != nil {
		return fail(s, o.resultFile, err)
	}
	writeResult(o.resultFile, s)
	return exitOK
}

func cmdPortForward(args []string) int {
	o, err := parsePortForward(args)
	if err != nil {
		return usage(err)
	}
	s := newState("portforward", o.transport)
	var run func() error
	timeout := o.timeout()
	switch {
	case len(o.listens) > 0:
		run = func() error { return pfSPDYListen(o, s) }
		if !o.timeoutSet {
			timeout = 0 // a background forwarder runs until stopped
		}
	case o.transport == "ws":
		run = func() error { return pfWS(o, s) }
	default:
		run = func() error { return pfSPDYOneShot(o, s) }
	}
	if err := runBounded(s, timeout, run); err != nil {
		return fail(s, o.resultFile, err)
	}
	writeResult(o.resultFile, s)
	return exitOK
}

func cmdBenchExec(args []string) int {
	var c common
	fs := flag.NewFlagSet("bench-exec", flag.ContinueOnError)
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return usage(&usageError{err.Error()})
	}
	if err := c.check(fs, false); err != nil {
		return usage(err)
	}
	if c.url != "" || c.resultFile != "" {
		return usage(usagef("bench-exec reads URLs from stdin and writes no result file"))
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64*1024), 1<<20)
	for in.Scan() {
		line := strings.TrimSpace(in.Text())
		if line == "" {
			continue
		}
		o := &execOpts{common: c, stdout: true, stderr: true, discardStdout: true, discardStderr: true}
		o.url = line
		s := newState("exec", c.transport)
		start := time.Now()
		err := runBounded(s, c.timeout(), func() error { return runExec(o, s) })
		us := time.Since(start).Microseconds()
		r := s.snapshot()
		switch {
		case err != nil:
			fmt.Fprintf(os.Stdout, "error %s\n", oneLine(err.Error()))
		case r.ExitCode == nil:
			fmt.Fprintf(os.Stdout, "error remote: %s\n", oneLine(r.RemoteError))
		default:
			fmt.Fprintf(os.Stdout, "done %d %d %d\n", *r.ExitCode, r.StdoutBytes, us)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "berth-stream-client: reading stdin: %v\n", err)
		return exitFailure
	}
	return exitOK
}

const usageText = `usage:
  berth-stream-client exec|attach --url URL [--transport spdy|ws] [--protocol P]... [--stdin] [--stdout]
      [--stderr] [--tty] [--stdin-data S | --stdin-file F|-] [--keep-stdin-open] [--stdin-delay-ms N]
      [--resize WxH]... [--resize-delay-ms N] [--discard-stdout] [--result FILE] [--timeout-sec N] [--ping-ms N]
  berth-stream-client portforward --url URL [--transport spdy|ws] [--protocol P]... --port P...
      [--listen ADDR]... [--send S] [--connections N] [--expect-bytes N] [--result FILE] [--timeout-sec N]
  berth-stream-client bench-exec [--transport spdy|ws] [--protocol P]... [--timeout-sec N]   (URLs on stdin)
all modes: [--die-with-parent]
`

func usage(err error) int {
	fmt.Fprintf(os.Stderr, "berth-stream-client: %v\n%s", err, usageText)
	// Still leave a result when the command line names one, so callers see why.
	if path := resultFlag(os.Args[1:]); path != "" {
		mode := ""
		if len(os.Args) > 1 {
			mode = os.Args[1]
		}
		s := newState(mode, "")
		s.update(func(r *result) { r.Error = "usage: " + err.Error() })
		writeResult(path, s)
	}
	return exitUsage
}

// resultFlag finds --result's value in a command line that failed to parse.
func resultFlag(args []string) string {
	for i, a := range args {
		for _, name := range []string{"--result", "-result"} {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
			if strings.HasPrefix(a, name+"=") {
				return strings.TrimPrefix(a, name+"=")
			}
		}
	}
	return ""
}

func main() {
	if len(os.Args) < 2 {
		os.Exit(usage(errors.New("no mode given")))
	}
	mode, args := os.Args[1], os.Args[2:]
	var code int
	switch mode {
	case "exec", "attach":
		code = cmdExec(mode, args)
	case "portforward":
		code = cmdPortForward(args)
	case "bench-exec":
		code = cmdBenchExec(args)
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usageText)
	default:
		code = usage(fmt.Errorf("unknown mode %q", mode))
	}
	os.Exit(code)
}
