// Package cpulist parses and formats the kernel's list format for CPUs
// and NUMA nodes ("0-3,8,10-11"), as in /sys/devices/system/cpu/online,
// cpuset.cpus and Cpus_allowed_list. capture, trigger and analyze share it.
package cpulist

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Max bounds the numbers accepted: a hostile or corrupt list cannot make
// Parse allocate without bound.
const Max = 1 << 16

// Parse parses a list (bitmap_print_to_pagebuf with %*pbl), returning the
// numbers sorted and unique; "" is the empty list (a memory-only node's
// cpulist).
func Parse(s string) ([]int, error) {
	out := []int{}
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("list %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("list %q: %w", s, err)
			}
		}
		if a < 0 || b < a || b >= Max || len(out)+b-a >= Max {
			return nil, fmt.Errorf("list %q: bad range %q", s, part)
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Count returns how many numbers the list (surrounding space allowed)
// holds, or 0 when it does not parse.
func Count(s string) int {
	l, err := Parse(strings.TrimSpace(s))
	if err != nil {
		return 0
	}
	return len(l)
}

// Format writes a sorted list in the kernel's format.
func Format(l []int) string {
	var parts []string
	for i := 0; i < len(l); {
		j := i
		for j+1 < len(l) && l[j+1] == l[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(l[i]))
		} else {
			parts = append(parts, strconv.Itoa(l[i])+"-"+strconv.Itoa(l[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
