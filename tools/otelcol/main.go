// otlp-sink: the OpenTelemetry Collector's own OTLP receiver (otlpreceiver, HTTP only)
// with a consumer that appends every batch of spans it accepts to a file as one line
// of OTLP JSON (pdata's JSON marshaler). Tests start it on loopback and read that file
// to see what fedgate exported. No pipeline, processors or telemetry of the collector's
// service: the receiver decodes OTLP/HTTP protobuf exactly as a collector does, and
// that is the part under test. See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
)

type host struct{}

func (host) GetExtensions() map[component.ID]component.Component { return nil }

func main() {
	endpoint := flag.String("endpoint", "127.0.0.1:4318", "host:port the OTLP/HTTP receiver listens on (loopback)")
	out := flag.String("out", "", "file each accepted batch is appended to, one OTLP JSON line per batch")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "otlp-sink: -out is required")
		os.Exit(2)
	}
	file, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "otlp-sink:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	marshaler := &ptrace.JSONMarshaler{}
	sink, err := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error {
		line, err := marshaler.MarshalTraces(td)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		_, err = file.Write(append(line, '\n'))
		return err
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "otlp-sink:", err)
		os.Exit(1)
	}

	factory := otlpreceiver.NewFactory()
	cfg := factory.CreateDefaultConfig().(*otlpreceiver.Config)
	// The defaults leave both protocols off until configured: HTTP on, gRPC off.
	http := cfg.Protocols.HTTP.GetOrInsertDefault()
	http.ServerConfig.NetAddr.Endpoint = *endpoint
	cfg.Protocols.GRPC = configoptional.None[configgrpc.ServerConfig]()

	logger, _ := zap.NewProduction()
	set := receiver.Settings{
		ID: component.NewID(factory.Type()),
		TelemetrySettings: component.TelemetrySettings{
			Logger:         logger,
			TracerProvider: tracenoop.NewTracerProvider(),
			MeterProvider:  metricnoop.NewMeterProvider(),
		},
		BuildInfo: component.NewDefaultBuildInfo(),
	}
	ctx := context.Background()
	rcv, err := factory.CreateTraces(ctx, set, cfg, sink)
	if err != nil {
		fmt.Fprintln(os.Stderr, "otlp-sink:", err)
		os.Exit(1)
	}
	if err := rcv.Start(ctx, host{}); err != nil {
		fmt.Fprintln(os.Stderr, "otlp-sink:", err)
		os.Exit(1)
	}
	// Start has bound the listener: the line tells the caller it can send.
	fmt.Printf("listening %s\n", *endpoint)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	_ = rcv.Shutdown(ctx)
	_ = file.Close()
}
