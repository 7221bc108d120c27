// Command connectbench is the connect-go peer of the benchmark: a server and a client that
// speak the same line protocol to the orchestrator (benchmarks/run.py) as the Python peers.
//
//	connectbench server -addr 127.0.0.1:PORT
//	connectbench client -url http://127.0.0.1:PORT -spec '{"workloads":[...]}' [-protocol connect|grpc|grpcweb]
//
// The server speaks Connect, gRPC and gRPC-Web over HTTP/1.1 and over HTTP/2 cleartext (h2c,
// prior knowledge). The client speaks Connect and gRPC-Web over HTTP/1.1, and gRPC over h2c.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"

	benchv1 "connectbench/gen/bench/v1"
	"connectbench/gen/bench/v1/benchv1connect"
)

// pool is random, incompressible data that payloads are cut from.
var pool = randomBytes(2 << 20)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func slice(i, size int) []byte {
	if size >= len(pool) {
		return randomBytes(size)
	}
	off := (i * 64) % (len(pool) - size)
	return pool[off : off+size]
}

type service struct{}

func (service) Unary(_ context.Context, req *connect.Request[benchv1.Payload]) (*connect.Response[benchv1.Payload], error) {
	return connect.NewResponse(&benchv1.Payload{Data: req.Msg.Data}), nil
}

func (service) Download(_ context.Context, req *connect.Request[benchv1.DownloadRequest], stream *connect.ServerStream[benchv1.Payload]) error {
	for i := 0; i < int(req.Msg.Count); i++ {
		if err := stream.Send(&benchv1.Payload{Data: slice(i, int(req.Msg.Size))}); err != nil {
			return err
		}
	}
	return nil
}

func (service) Upload(_ context.Context, stream *connect.ClientStream[benchv1.Payload]) (*connect.Response[benchv1.UploadSummary], error) {
	var n, size uint64
	for stream.Receive() {
		n++
		size += uint64(len(stream.Msg().Data))
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	return connect.NewResponse(&benchv1.UploadSummary{Messages: n, Bytes: size}), nil
}

func serve(addr string) {
	mux := http.NewServeMux()
	path, handler := benchv1connect.NewBenchServiceHandler(service{},
		// Compression off, like every other peer.
		connect.WithCompression("gzip", nil, nil),
		connect.WithReadMaxBytes(64<<20))
	mux.Handle(path, handler)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	// HTTP/1.1 and HTTP/2 cleartext (gRPC needs HTTP/2; there is no TLS on loopback here).
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, Protocols: &protocols}
	log.Fatal(srv.Serve(ln))
}

// --- client ---------------------------------------------------------------------------

type workload struct {
	Name        string  `json:"name"`
	Kind        string  `json:"kind"`
	MaxCalls    int     `json:"max_calls"`
	MaxSeconds  float64 `json:"max_seconds"`
	Concurrency int     `json:"concurrency"`
	Count       int     `json:"count"`
	Size        int     `json:"size"`
	Warmup      int     `json:"warmup"`
	Timeout     float64 `json:"timeout"`
}

type spec struct {
	Workloads []workload `json:"workloads"`
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

var (
	out   = json.NewEncoder(os.Stdout)
	stdin = bufio.NewReader(os.Stdin)
)

func emit(v map[string]any) {
	if err := out.Encode(v); err != nil {
		log.Fatal(err)
	}
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

type runner struct {
	client benchv1connect.BenchServiceClient
}

func (r runner) unary(ctx context.Context) error {
	_, err := r.client.Unary(ctx, connect.NewRequest(&benchv1.Payload{Data: randomBytes(16)}))
	return err
}

func (r runner) download(ctx context.Context, count, size int) (int, int, error) {
	stream, err := r.client.Download(ctx, connect.NewRequest(&benchv1.DownloadRequest{Count: uint32(count), Size: uint32(size)}))
	if err != nil {
		return 0, 0, err
	}
	n, total := 0, 0
	for stream.Receive() {
		n++
		total += len(stream.Msg().Data)
	}
	return n, total, stream.Err()
}

func (r runner) upload(ctx context.Context, msgs []*benchv1.Payload) (int, error) {
	stream := r.client.Upload(ctx)
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			break
		}
	}
	res, err := stream.CloseAndReceive()
	if err != nil {
		return 0, err
	}
	return int(res.Msg.Messages), nil
}

func (r runner) run(w workload) (map[string]any, error) {
	// A bound on the whole workload that is not a deadline: a deadline would go to the server
	// in every request (Connect-Timeout-Ms, grpc-timeout), which the Python clients don't send.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	timer := time.AfterFunc(time.Duration(w.Timeout*float64(time.Second)), cancel)
	defer timer.Stop()
	maxDur := time.Duration(w.MaxSeconds * float64(time.Second))
	res := map[string]any{}
	var msgs []*benchv1.Payload
	switch w.Kind {
	case "unary_seq", "unary_conc":
		for i := 0; i < w.Warmup; i++ {
			if err := r.unary(ctx); err != nil {
				return nil, err
			}
		}
	case "download":
		if _, _, err := r.download(ctx, min(w.Count, 1000), w.Size); err != nil {
			return nil, err
		}
	case "upload":
		msgs = make([]*benchv1.Payload, w.Count)
		for i := range msgs {
			msgs[i] = &benchv1.Payload{Data: randomBytes(w.Size)}
		}
		if _, err := r.upload(ctx, msgs[:min(len(msgs), 1000)]); err != nil {
			return nil, err
		}
	}
	emit(map[string]any{"event": "ready", "workload": w.Name})
	if _, err := stdin.ReadString('\n'); err != nil {
		return nil, err
	}
	cpu0 := cpuSeconds()
	t0 := time.Now()
	switch w.Kind {
	case "unary_seq":
		lat := make([]float64, 0, w.MaxCalls)
		for len(lat) < w.MaxCalls && time.Since(t0) < maxDur {
			s := time.Now()
			if err := r.unary(ctx); err != nil {
				return nil, err
			}
			lat = append(lat, float64(time.Since(s).Microseconds()))
		}
		sort.Float64s(lat)
		res["calls"] = len(lat)
		res["p50_us"] = percentile(lat, 0.50)
		res["p99_us"] = percentile(lat, 0.99)
	case "unary_conc":
		var mu sync.Mutex
		calls := 0
		var firstErr error
		var wg sync.WaitGroup
		for g := 0; g < w.Concurrency; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					mu.Lock()
					stop := calls >= w.MaxCalls || time.Since(t0) >= maxDur || firstErr != nil
					if !stop {
						calls++
					}
					mu.Unlock()
					if stop {
						return
					}
					if err := r.unary(ctx); err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
						return
					}
				}
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return nil, firstErr
		}
		res["calls"] = calls
	case "download":
		n, total, err := r.download(ctx, w.Count, w.Size)
		if err != nil {
			return nil, err
		}
		if n != w.Count {
			return nil, fmt.Errorf("got %d messages, want %d", n, w.Count)
		}
		res["msgs"] = n
		res["bytes"] = total
	case "upload":
		n, err := r.upload(ctx, msgs)
		if err != nil {
			return nil, err
		}
		if n != w.Count {
			return nil, fmt.Errorf("server counted %d messages, want %d", n, w.Count)
		}
		res["msgs"] = n
		res["bytes"] = n * w.Size
	default:
		return nil, fmt.Errorf("unknown workload kind %q", w.Kind)
	}
	res["seconds"] = time.Since(t0).Seconds()
	res["client_cpu_s"] = cpuSeconds() - cpu0
	return res, nil
}

// clientOptions returns the connect-go options and the HTTP transport for a protocol:
// Connect and gRPC-Web over HTTP/1.1 (a connection per concurrent call, like the Python
// Connect clients), gRPC over HTTP/2 cleartext with prior knowledge (calls multiplexed on one
// connection, like grpc.aio's client).
func clientOptions(protocol string) ([]connect.ClientOption, *http.Transport, error) {
	transport := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableCompression: true}
	opts := []connect.ClientOption{
		connect.WithAcceptCompression("gzip", nil, nil),
		connect.WithReadMaxBytes(64 << 20),
	}
	switch protocol {
	case "connect":
	case "grpcweb":
		opts = append(opts, connect.WithGRPCWeb())
	case "grpc":
		opts = append(opts, connect.WithGRPC())
		var protocols http.Protocols
		protocols.SetUnencryptedHTTP2(true)
		transport.Protocols = &protocols
	default:
		return nil, nil, fmt.Errorf("unknown protocol %q (connect, grpc or grpcweb)", protocol)
	}
	return opts, transport, nil
}

func runClient(url, specJSON, protocol string) {
	var s spec
	if err := json.Unmarshal([]byte(specJSON), &s); err != nil {
		log.Fatal(err)
	}
	opts, transport, err := clientOptions(protocol)
	if err != nil {
		log.Fatal(err)
	}
	httpClient := &http.Client{Transport: transport}
	r := runner{client: benchv1connect.NewBenchServiceClient(httpClient, url, opts...)}
	for _, w := range s.Workloads {
		res, err := r.run(w)
		if err != nil {
			emit(map[string]any{"event": "error", "workload": w.Name, "error": err.Error()})
			continue
		}
		res["event"] = "result"
		res["workload"] = w.Name
		emit(res)
	}
	emit(map[string]any{"event": "done", "versions": map[string]string{"go": goVersion()}})
}

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: connectbench server|client ...")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "server listen address")
	url := fs.String("url", "", "client base URL")
	specJSON := fs.String("spec", "", "client workloads (JSON)")
	protocol := fs.String("protocol", "connect", "client protocol: connect, grpc (h2c) or grpcweb")
	_ = fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "server":
		serve(*addr)
	case "client":
		runClient(*url, *specJSON, *protocol)
	default:
		log.Fatal(errors.New("usage: connectbench server|client ..."))
	}
}
