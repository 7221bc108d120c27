// Command elizainterop is a connect-go client of the Eliza example service, used by
// tests/examples/test_interop_go.py to check connect-python's server against a real peer,
// and (with "serve", see server.go) a connect-go Eliza server, used by
// tests/examples/test_interop_http2.py to check connect-python's HTTP/2 client.
//
//	elizainterop -url http://127.0.0.1:8080 -protocol grpc|grpcweb|connect [-http1]
//	elizainterop serve [-tls-cert cert.pem -tls-key key.pem]
//
// It calls every RPC kind of connectrpc.eliza.v1.ElizaService over HTTP/2 cleartext (h2c,
// prior knowledge), so that the bidirectional Converse is full-duplex: each sentence is sent
// only after the reply to the previous one has arrived. With -http1 it speaks HTTP/1.1
// instead (for the WSGI server) and skips Converse: connect-go refuses bidi streams over
// HTTP/1.1. It prints one JSON object per result
// on stdout, in a fixed order, and exits non-zero (with the reason on stderr) when a call
// does not behave as a call of its kind must; the test compares the objects exactly.
//
// The code in elizainterop/gen is generated from examples/proto at build time, never
// committed: the test copies this module to a cache directory, runs protoc-gen-go and
// protoc-gen-connect-go (installed with go install, at the versions the test pins) through
// grpc_tools.protoc with
//
//	--go_opt=module=elizainterop/gen,Meliza/v1/eliza.proto=elizainterop/gen/elizav1
//
// (and the same --connect-go_opt), and runs go build there. go.sum pins every module, so once
// the module cache has them the build needs no network.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/wrapperspb"

	elizav1 "elizainterop/gen/elizav1"
	"elizainterop/gen/elizav1/elizav1connect"
)

// result is one line of output. Fields that do not apply to an RPC are left out.
type result struct {
	RPC        string            `json:"rpc"`
	HTTPMethod string            `json:"http_method,omitempty"`
	Sentence   *string           `json:"sentence,omitempty"`
	Sentences  []string          `json:"sentences,omitempty"`
	Code       string            `json:"code,omitempty"`
	Message    *string           `json:"message,omitempty"`
	Details    []detail          `json:"details,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Trailers   map[string]string `json:"trailers,omitempty"`
	Protos     []string          `json:"protos,omitempty"`
}

type detail struct {
	Type        string `json:"type"`
	ValueBase64 string `json:"value_base64"`
	// The detail decoded, when it is a google.protobuf.StringValue.
	Value *string `json:"value,omitempty"`
}

// recorder wraps a transport and remembers the HTTP method of the last request it sent and
// the HTTP versions of the responses it received.
type recorder struct {
	base   http.RoundTripper
	mu     sync.Mutex
	last   string
	protos map[string]bool
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.last = req.Method
	r.mu.Unlock()
	res, err := r.base.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.protos[res.Proto] = true
		r.mu.Unlock()
	}
	return res, err
}

func (r *recorder) seenProtos() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.protos))
	for proto := range r.protos {
		out = append(out, proto)
	}
	sort.Strings(out)
	return out
}

func (r *recorder) lastMethod() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// elizaMeta keeps the eliza-* entries of a header or trailer map (the ones the service
// sets), so that the output does not depend on what else a protocol sends.
func elizaMeta(h http.Header) map[string]string {
	out := map[string]string{}
	for key, values := range h {
		lower := strings.ToLower(key)
		if strings.HasPrefix(lower, "eliza-") {
			out[lower] = strings.Join(values, ",")
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func ptr(s string) *string { return &s }

func emit(r result) {
	line, err := json.Marshal(r)
	if err != nil {
		fail("encoding %s: %v", r.RPC, err)
	}
	fmt.Println(string(line))
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "elizainterop: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		serve(os.Args[2:])
		return
	}
	baseURL := flag.String("url", "", "base URL of the Eliza server, e.g. http://127.0.0.1:8080")
	protocol := flag.String("protocol", "grpc", "grpc, grpcweb or connect")
	timeout := flag.Duration("timeout", 30*time.Second, "deadline of the whole run")
	http1 := flag.Bool("http1", false, "HTTP/1.1 instead of h2c (and no Converse)")
	flag.Parse()
	if *baseURL == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}

	var options []connect.ClientOption
	switch *protocol {
	case "grpc":
		options = append(options, connect.WithGRPC())
	case "grpcweb":
		options = append(options, connect.WithGRPCWeb())
	case "connect":
	default:
		fail("unknown protocol %q", *protocol)
	}

	// HTTP/2 without TLS, with prior knowledge, for every protocol (Go 1.24+).
	var protocols http.Protocols
	if *http1 {
		protocols.SetHTTP1(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	transport := &recorder{base: &http.Transport{Protocols: &protocols}, protos: map[string]bool{}}
	httpClient := &http.Client{Transport: transport}
	client := elizav1connect.NewElizaServiceClient(httpClient, *baseURL, options...)

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	say(ctx, client)
	if *protocol == "connect" {
		// Say has no side effects, so a Connect client may send it as an HTTP GET.
		getClient := elizav1connect.NewElizaServiceClient(
			httpClient, *baseURL, connect.WithHTTPGet(), connect.WithSendGzip())
		sayWithGet(ctx, getClient, transport)
	}
	introduce(ctx, client)
	pontificate(ctx, client)
	if !*http1 {
		converse(ctx, client)
	}
	sayNothing(ctx, client)
	// Every response came over the HTTP version asked for, whatever the protocol.
	emit(result{RPC: "transport", Protos: transport.seenProtos()})
}

func say(ctx context.Context, client elizav1connect.ElizaServiceClient) {
	res, err := client.Say(ctx, connect.NewRequest(&elizav1.SayRequest{Sentence: "I am sad"}))
	if err != nil {
		fail("Say: %v", err)
	}
	emit(result{
		RPC:      "Say",
		Sentence: ptr(res.Msg.GetSentence()),
		Headers:  elizaMeta(res.Header()),
		Trailers: elizaMeta(res.Trailer()),
	})
}

func sayWithGet(ctx context.Context, client elizav1connect.ElizaServiceClient, rec *recorder) {
	res, err := client.Say(ctx, connect.NewRequest(&elizav1.SayRequest{Sentence: "I need a holiday"}))
	if err != nil {
		fail("Say (GET): %v", err)
	}
	emit(result{
		RPC:        "SayGet",
		HTTPMethod: rec.lastMethod(),
		Sentence:   ptr(res.Msg.GetSentence()),
		Headers:    elizaMeta(res.Header()),
	})
}

func introduce(ctx context.Context, client elizav1connect.ElizaServiceClient) {
	stream, err := client.Introduce(ctx, connect.NewRequest(&elizav1.IntroduceRequest{Name: "Ada"}))
	if err != nil {
		fail("Introduce: %v", err)
	}
	defer stream.Close()
	sentences := []string{}
	for stream.Receive() {
		sentences = append(sentences, stream.Msg().GetSentence())
	}
	if err := stream.Err(); err != nil {
		fail("Introduce: %v", err)
	}
	emit(result{
		RPC:       "Introduce",
		Sentences: sentences,
		Headers:   elizaMeta(stream.ResponseHeader()),
		Trailers:  elizaMeta(stream.ResponseTrailer()),
	})
}

func pontificate(ctx context.Context, client elizav1connect.ElizaServiceClient) {
	stream := client.Pontificate(ctx)
	for _, sentence := range []string{"Hi.", "I am sad."} {
		if err := stream.Send(&elizav1.PontificateRequest{Sentence: sentence}); err != nil {
			fail("Pontificate: send: %v", err)
		}
	}
	res, err := stream.CloseAndReceive()
	if err != nil {
		fail("Pontificate: %v", err)
	}
	emit(result{
		RPC:      "Pontificate",
		Sentence: ptr(res.Msg.GetSentence()),
		Headers:  elizaMeta(res.Header()),
		Trailers: elizaMeta(res.Trailer()),
	})
}

func converse(ctx context.Context, client elizav1connect.ElizaServiceClient) {
	stream := client.Converse(ctx)
	sentences := []string{}
	// Full duplex: the request stream stays open while each reply is awaited.
	for _, sentence := range []string{"Hello", "I need a holiday", "Goodbye"} {
		if err := stream.Send(&elizav1.ConverseRequest{Sentence: sentence}); err != nil {
			fail("Converse: send %q: %v", sentence, err)
		}
		reply, err := stream.Receive()
		if err != nil {
			fail("Converse: reply to %q: %v", sentence, err)
		}
		sentences = append(sentences, reply.GetSentence())
	}
	if err := stream.CloseRequest(); err != nil {
		fail("Converse: close request: %v", err)
	}
	if _, err := stream.Receive(); !errors.Is(err, io.EOF) {
		fail("Converse: expected the end of the stream, got %v", err)
	}
	if err := stream.CloseResponse(); err != nil {
		fail("Converse: close response: %v", err)
	}
	emit(result{
		RPC:       "Converse",
		Sentences: sentences,
		Headers:   elizaMeta(stream.ResponseHeader()),
		Trailers:  elizaMeta(stream.ResponseTrailer()),
	})
}

func sayNothing(ctx context.Context, client elizav1connect.ElizaServiceClient) {
	_, err := client.Say(ctx, connect.NewRequest(&elizav1.SayRequest{Sentence: " "}))
	if err == nil {
		fail("Say with a blank sentence succeeded")
	}
	var connectErr *connect.Error
	if !errors.As(err, &connectErr) {
		fail("Say with a blank sentence: not a Connect error: %v", err)
	}
	details := []detail{}
	for _, d := range connectErr.Details() {
		out := detail{Type: d.Type(), ValueBase64: base64.StdEncoding.EncodeToString(d.Bytes())}
		value, err := d.Value()
		if err != nil {
			fail("error detail %s: %v", d.Type(), err)
		}
		if s, ok := value.(*wrapperspb.StringValue); ok {
			out.Value = ptr(s.GetValue())
		}
		details = append(details, out)
	}
	emit(result{
		RPC:     "error",
		Code:    connectErr.Code().String(),
		Message: ptr(connectErr.Message()),
		Details: details,
		Headers: elizaMeta(connectErr.Meta()),
	})
}
