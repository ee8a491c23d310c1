package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cpuUse is the CPU time (user + system, in clock ticks of 10 ms) of the
// pipeline's processes, the broker and the database, read from /proc: a
// per-process profile of a benchmark at no cost to it.
type cpuUse map[string]int64

// readCPU sums the CPU ticks of env's processes by service name, and of
// every RabbitMQ (beam.smp) and PostgreSQL process on the machine. The
// broker and the database are machine-wide: other work on them counts too.
func readCPU(env *Env) cpuUse {
	use := cpuUse{}
	for _, p := range env.procs {
		if p.cmd.Process != nil {
			use[p.name] += procTicks(p.cmd.Process.Pid)
		}
		if p.collect.Process != nil {
			use["logs"] += procTicks(p.collect.Process.Pid) // log collection, as a container runtime's
		}
	}
	use["bench"] = procTicks(os.Getpid()) // the test itself: image server, load generator
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(comm))
		if name == "beam.smp" || name == "postgres" {
			pid, _ := strconv.Atoi(filepath.Base(d))
			use[map[string]string{"beam.smp": "rabbitmq", "postgres": "postgres"}[name]] += procTicks(pid)
		}
	}
	return use
}

// procTicks is utime + stime of pid, or 0 if it is gone.
func procTicks(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command may contain spaces: fields count from after ")".
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

// reportCPU reports the CPU milliseconds per photo of each process group
// between before and after. Postgres backends that exited in between are
// not counted.
func reportCPU(b *testing.B, before, after cpuUse, photos int) {
	reportCPUPer(b, before, after, photos, "photo")
}

// reportCPUPer is reportCPU for n units of another name ("get" requests).
func reportCPUPer(b *testing.B, before, after cpuUse, n int, unit string) {
	var total float64
	for name, t := range after {
		ms := float64(t-before[name]) * 10 / float64(n)
		if ms < 0 {
			continue
		}
		total += ms
		b.ReportMetric(ms, "cpu-ms/"+unit+"-"+name)
	}
	b.ReportMetric(total, "cpu-ms/"+unit+"-total")
}
