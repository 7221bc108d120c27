package main

// The serve mode: a connect-go Eliza server, for tests/examples/test_interop_http2.py, which
// calls it with connect-python's HTTP/2 client over gRPC, gRPC-Web and Connect.
//
//	elizainterop serve [-tls-cert cert.pem -tls-key key.pem]
//
// It listens on a free port of 127.0.0.1 and prints one line, "listening on URL", once the
// socket is bound. It speaks HTTP/2 only: h2c with prior knowledge on plain TCP, h2 by ALPN
// with TLS, so a client that falls back to HTTP/1.1 fails instead of passing unnoticed. It
// stops gracefully on SIGTERM or SIGINT, and when its stdin closes (the test went away).
//
// Its Eliza does not think: her replies are fixed so that any peer can give the same ones
// (the test's grpc.aio server and tests/interop/node/server.mjs give them too):
//
//   - every response has the header "eliza-peer: connect-go";
//   - a request header "eliza-delay-ms: N" makes Say and Introduce wait N ms (or until the
//     call is cancelled or its deadline passes) before answering, for deadline tests;
//   - Say answers "You said: SENTENCE"; a blank sentence fails with invalid_argument,
//     "say something: the sentence is empty" and a google.protobuf.StringValue detail
//     "SayRequest.sentence";
//   - Introduce streams "Hello, NAME.", "I am Eliza.", "How do you do?";
//   - Pontificate answers "I heard: S1 | S2 | ..." with the trailer "eliza-heard: COUNT";
//   - Converse answers each sentence as it arrives with "You said: SENTENCE", and ends with
//     the trailer "eliza-turns: COUNT" once the client closes its side.

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/wrapperspb"

	elizav1 "elizainterop/gen/elizav1"
	"elizainterop/gen/elizav1/elizav1connect"
)

const peerName = "connect-go"

type elizaServer struct{}

var _ elizav1connect.ElizaServiceHandler = elizaServer{}

// delay waits for the eliza-delay-ms the client asked for, or until ctx is done.
func delay(ctx context.Context, header http.Header) error {
	raw := header.Get("eliza-delay-ms")
	if raw == "" {
		return nil
	}
	ms, err := strconv.Atoi(raw)
	if err != nil || ms < 0 {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("bad eliza-delay-ms %q", raw))
	}
	timer := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err() // connect-go sends it as canceled or deadline_exceeded
	}
}

func (elizaServer) Say(
	ctx context.Context, req *connect.Request[elizav1.SayRequest],
) (*connect.Response[elizav1.SayResponse], error) {
	if err := delay(ctx, req.Header()); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Msg.GetSentence()) == "" {
		err := connect.NewError(connect.CodeInvalidArgument, errors.New("say something: the sentence is empty"))
		detail, detailErr := connect.NewErrorDetail(wrapperspb.String("SayRequest.sentence"))
		if detailErr != nil {
			return nil, detailErr
		}
		err.AddDetail(detail)
		err.Meta().Set("eliza-peer", peerName)
		return nil, err
	}
	res := connect.NewResponse(&elizav1.SayResponse{Sentence: "You said: " + req.Msg.GetSentence()})
	res.Header().Set("eliza-peer", peerName)
	return res, nil
}

func (elizaServer) Introduce(
	ctx context.Context,
	req *connect.Request[elizav1.IntroduceRequest],
	stream *connect.ServerStream[elizav1.IntroduceResponse],
) error {
	stream.ResponseHeader().Set("eliza-peer", peerName)
	if err := delay(ctx, req.Header()); err != nil {
		return err
	}
	for _, sentence := range []string{"Hello, " + req.Msg.GetName() + ".", "I am Eliza.", "How do you do?"} {
		if err := stream.Send(&elizav1.IntroduceResponse{Sentence: sentence}); err != nil {
			return err
		}
	}
	return nil
}

func (elizaServer) Pontificate(
	ctx context.Context, stream *connect.ClientStream[elizav1.PontificateRequest],
) (*connect.Response[elizav1.PontificateResponse], error) {
	heard := []string{}
	for stream.Receive() {
		heard = append(heard, stream.Msg().GetSentence())
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	res := connect.NewResponse(&elizav1.PontificateResponse{Sentence: "I heard: " + strings.Join(heard, " | ")})
	res.Header().Set("eliza-peer", peerName)
	res.Trailer().Set("eliza-heard", strconv.Itoa(len(heard)))
	return res, nil
}

func (elizaServer) Converse(
	ctx context.Context, stream *connect.BidiStream[elizav1.ConverseRequest, elizav1.ConverseResponse],
) error {
	stream.ResponseHeader().Set("eliza-peer", peerName)
	turns := 0
	for {
		req, err := stream.Receive()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		turns++
		// Each reply goes out at once: a half-duplex client would never see it before
		// closing its side, and the test would time out.
		if err := stream.Send(&elizav1.ConverseResponse{Sentence: "You said: " + req.GetSentence()}); err != nil {
			return err
		}
	}
	stream.ResponseTrailer().Set("eliza-turns", strconv.Itoa(turns))
	return nil
}

func serve(args []string) {
	flags := flag.NewFlagSet("serve", flag.ExitOnError)
	certFile := flags.String("tls-cert", "", "PEM certificate chain; serves h2 over TLS")
	keyFile := flags.String("tls-key", "", "PEM private key of -tls-cert")
	_ = flags.Parse(args) // ExitOnError: Parse exits on bad flags
	if flags.NArg() != 0 || (*certFile == "") != (*keyFile == "") {
		flags.Usage()
		os.Exit(2)
	}

	mux := http.NewServeMux()
	mux.Handle(elizav1connect.NewElizaServiceHandler(elizaServer{}))
	var protocols http.Protocols
	server := &http.Server{Handler: mux, Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second}
	scheme := "http"
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fail("loading the TLS key pair: %v", err)
		}
		protocols.SetHTTP2(true)
		server.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme = "https"
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		if scheme == "https" {
			done <- server.ServeTLS(listener, "", "")
		} else {
			done <- server.Serve(listener)
		}
	}()
	fmt.Printf("listening on %s://%s\n", scheme, listener.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	select {
	case err := <-done:
		fail("serve: %v", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := server.Shutdown(shutdown); err != nil {
		fail("shutdown: %v", err)
	}
}
