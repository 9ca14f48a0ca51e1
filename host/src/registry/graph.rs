//! Dependency-graph algorithms over service names: cycle detection (Tarjan's strongly
//! connected components) and topological order. Pure functions on name maps, shared by
//! validation here and by the supervisor's start/stop ordering.

use std::collections::BTreeMap;

/// Every `run_dep` cycle, each as its members in edge order starting from the
/// smallest name. Edges to names not in the map are ignored.
pub fn cycles(edges: &BTreeMap<&str, Vec<&str>>) -> Vec<Vec<String>> {
    let mut tarjan = Tarjan {
        edges,
        index: 0,
        indices: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeMap::new(),
        sccs: Vec::new(),
    };
    for node in edges.keys() {
        if !tarjan.indices.contains_key(node) {
            tarjan.visit(node);
        }
    }
    tarjan.sccs.into_iter().filter(|scc| scc.len() > 1).map(|scc| cycle_path(edges, &scc)).collect()
}

struct Tarjan<'a> {
    edges: &'a BTreeMap<&'a str, Vec<&'a str>>,
    index: usize,
    indices: BTreeMap<&'a str, usize>,
    low: BTreeMap<&'a str, usize>,
    stack: Vec<&'a str>,
    on_stack: BTreeMap<&'a str, bool>,
    sccs: Vec<Vec<&'a str>>,
}

impl<'a> Tarjan<'a> {
    // Recursion depth is bounded by the number of services (hundreds), well within
    // the stack.
    fn visit(&mut self, v: &'a str) {
        self.indices.insert(v, self.index);
        self.low.insert(v, self.index);
        self.index += 1;
        self.stack.push(v);
        self.on_stack.insert(v, true);
        for &w in self.edges.get(v).map(Vec::as_slice).unwrap_or(&[]) {
            if !self.edges.contains_key(w) {
                continue;
            }
            if !self.indices.contains_key(w) {
                self.visit(w);
                let lw = self.low[w];
                let lv = self.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if self.on_stack.get(w).copied().unwrap_or(false) {
                let iw = self.indices[w];
                let lv = self.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if self.low[v] == self.indices[v] {
            let mut scc = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack.insert(w, false);
                scc.push(w);
                if w == v {
                    break;
                }
            }
            self.sccs.push(scc);
        }
    }
}

/// A concrete cycle through the component, starting at its smallest member, so the
/// message reads `a -> b -> c -> a` rather than an unordered set. Breadth-first search
/// from the start's successors back to the start finds the shortest real cycle (every
/// printed edge exists).
fn cycle_path(edges: &BTreeMap<&str, Vec<&str>>, scc: &[&str]) -> Vec<String> {
    let start = *scc.iter().min().expect("non-empty component");
    let inside = |n: &&str| scc.contains(n);
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        let mut next: Vec<&str> = edges[node].iter().copied().filter(inside).collect();
        next.sort();
        for n in next {
            if n == start {
                let mut path = vec![node];
                while let Some(prev) = came_from.get(path.last().expect("non-empty")) {
                    path.push(prev);
                }
                path.reverse();
                return path.into_iter().map(String::from).collect();
            }
            if n != start && !came_from.contains_key(n) {
                came_from.insert(n, node);
                queue.push_back(n);
            }
        }
    }
    // Unreachable for a strongly connected component; fall back to its members.
    let mut members: Vec<String> = scc.iter().map(|s| s.to_string()).collect();
    members.sort();
    members
}

/// Names in an order where every service comes after its dependencies; `None` if the
/// graph has a cycle. Ties are broken by name so the order is stable.
pub fn topological_order(edges: &BTreeMap<&str, Vec<&str>>) -> Option<Vec<String>> {
    let mut remaining: BTreeMap<&str, usize> =
        edges.iter().map(|(n, deps)| (*n, deps.iter().filter(|d| edges.contains_key(*d)).count())).collect();
    let mut order = Vec::new();
    while !remaining.is_empty() {
        let ready: Vec<&str> = remaining.iter().filter(|(_, c)| **c == 0).map(|(n, _)| *n).collect();
        if ready.is_empty() {
            return None;
        }
        for n in ready {
            remaining.remove(n);
            order.push(n.to_string());
            for (m, deps) in edges {
                if deps.contains(&n)
                    && let Some(c) = remaining.get_mut(m)
                {
                    *c -= 1;
                }
            }
        }
    }
    Some(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(pairs: &[(&'static str, &[&'static str])]) -> BTreeMap<&'static str, Vec<&'static str>> {
        pairs.iter().map(|(n, d)| (*n, d.to_vec())).collect()
    }

    #[test]
    fn finds_cycle_in_order() {
        let edges = g(&[("c", &["a"]), ("a", &["b"]), ("b", &["c"]), ("d", &["a"])]);
        assert_eq!(cycles(&edges), vec![vec!["a".to_string(), "b".into(), "c".into()]]);
        assert_eq!(topological_order(&edges), None);
    }

    #[test]
    fn printed_cycle_uses_real_edges() {
        // a->b, b->c, c->b, b->d, d->a: the shortest cycle through a is a, b, d.
        let edges = g(&[("a", &["b"]), ("b", &["c", "d"]), ("c", &["b"]), ("d", &["a"])]);
        let found = cycles(&edges);
        assert_eq!(found, vec![vec!["a".to_string(), "b".into(), "d".into()]]);
    }

    #[test]
    fn orders_dependencies_first() {
        let edges = g(&[("web", &["db"]), ("worker", &["web", "db"]), ("db", &[])]);
        assert!(cycles(&edges).is_empty());
        assert_eq!(topological_order(&edges).unwrap(), vec!["db", "web", "worker"]);
    }
}
