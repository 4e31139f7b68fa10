// gonet: a Go program for the seccomp tests and benchmark (Go makes its socket calls as raw system calls and
// resolves names with its own resolver, so only the seccomp supervisor gives it the virtual network).
//
//	gonet serve PORT                  accept loop: "ACCEPTED local=A:P remote=A:P", echoes one line back
//	gonet get HOST PORT MSG           dial (names through Go's pure resolver): "CONNECTED local=.. remote=..", "REPLY .."
//	gonet connects HOST PORT N        N sequential dials+closes: "CONNECTS n=N p50_us=.. p99_us=.. mean_us=.."
//	gonet sink PORT                   accept loop discarding everything (throughput server)
//	gonet stream HOST PORT SECONDS    writes for SECONDS: "STREAM bytes=.. mbit_s=.."
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"time"
)

func must(err error) {
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
}

// listen listens on every address at port and runs handle for each connection accepted.
func listen(port string, handle func(c net.Conn)) {
	l, err := net.Listen("tcp", ":"+port)
	must(err)
	fmt.Println("LISTENING")
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Println("ERROR", err)
			continue
		}
		handle(c)
	}
}

func serve(port string) {
	listen(port, func(c net.Conn) {
		fmt.Printf("ACCEPTED local=%s remote=%s\n", c.LocalAddr(), c.RemoteAddr())
		go func(c net.Conn) {
			defer c.Close()
			line, _ := bufio.NewReader(c).ReadString('\n')
			fmt.Fprintf(c, "echo:%s", line)
		}(c)
	})
}

func get(host, port, msg string) {
	var c net.Conn
	var err error
	for i := 0; i < 20; i++ { // the server's member may still be starting (bounded)
		if c, err = net.DialTimeout("tcp", net.JoinHostPort(host, port), 10*time.Second); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	must(err)
	fmt.Printf("CONNECTED local=%s remote=%s\n", c.LocalAddr(), c.RemoteAddr())
	fmt.Fprintf(c, "%s\n", msg)
	reply, _ := io.ReadAll(c)
	fmt.Printf("REPLY %s\n", reply)
}

func connects(host, port string, n int) {
	addr := net.JoinHostPort(host, port)
	d := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		us := float64(time.Since(t0).Nanoseconds()) / 1000
		must(err)
		c.Close()
		d = append(d, us)
	}
	sort.Float64s(d)
	sum := 0.0
	for _, v := range d {
		sum += v
	}
	fmt.Printf("CONNECTS n=%d p50_us=%.1f p99_us=%.1f mean_us=%.1f\n", n, d[n/2], d[n*99/100], sum/float64(n))
}

func sink(port string) {
	listen(port, func(c net.Conn) {
		go func(c net.Conn) { io.Copy(io.Discard, c); c.Close() }(c)
	})
}

func stream(host, port string, secs int) {
	c, err := net.Dial("tcp", net.JoinHostPort(host, port))
	must(err)
	buf := make([]byte, 128<<10)
	end := time.Now().Add(time.Duration(secs) * time.Second)
	t0 := time.Now()
	total := 0
	for time.Now().Before(end) {
		n, err := c.Write(buf)
		must(err)
		total += n
	}
	c.Close()
	fmt.Printf("STREAM bytes=%d mbit_s=%.0f\n", total, float64(total)*8/time.Since(t0).Seconds()/1e6)
}

func main() {
	a := os.Args
	switch {
	case len(a) == 3 && a[1] == "serve":
		serve(a[2])
	case len(a) == 5 && a[1] == "get":
		get(a[2], a[3], a[4])
	case len(a) == 5 && a[1] == "connects":
		n, err := strconv.Atoi(a[4])
		must(err)
		connects(a[2], a[3], n)
	case len(a) == 3 && a[1] == "sink":
		sink(a[2])
	case len(a) == 5 && a[1] == "stream":
		s, err := strconv.Atoi(a[4])
		must(err)
		stream(a[2], a[3], s)
	default:
		fmt.Fprintln(os.Stderr, "usage: gonet serve PORT | get HOST PORT MSG | connects HOST PORT N | sink PORT | stream HOST PORT SECONDS")
		os.Exit(2)
	}
}
