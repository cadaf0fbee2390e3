//! Matching a parsed pattern inside the policy: a Thompson NFA run over the text once, so the
//! cost is linear in the text whatever the pattern (no backtracking blow-up on `*a*a*a*b`).

use super::parse::Node;
use alloc::vec;
use alloc::vec::Vec;

#[derive(Debug)]
enum Inst {
    Char(char),
    /// Any character but a separator.
    AnyButSeparator,
    /// Any character.
    Any,
    /// Index range into `ranges`.
    Class {
        start: usize,
        end: usize,
        negated: bool,
    },
    Split(usize, usize),
    Jump(usize),
    Match,
}

fn is_separator(c: char) -> bool {
    c == ':' || c == '/'
}

/// A compiled glob.
#[derive(Debug)]
pub(crate) struct Program {
    insts: Vec<Inst>,
    ranges: Vec<(char, char)>,
}

impl Program {
    pub(crate) fn compile(nodes: &[Node]) -> Self {
        let mut program = Program {
            insts: Vec::with_capacity(nodes.len() + 1),
            ranges: Vec::new(),
        };
        program.emit_all(nodes);
        program.insts.push(Inst::Match);
        program
    }

    fn emit_all(&mut self, nodes: &[Node]) {
        for node in nodes {
            self.emit(node);
        }
    }

    fn emit(&mut self, node: &Node) {
        match node {
            Node::Literal(c) => self.insts.push(Inst::Char(*c)),
            Node::AnyChar => self.insts.push(Inst::AnyButSeparator),
            Node::Star => self.repeat(Inst::AnyButSeparator),
            Node::DoubleStar => self.repeat(Inst::Any),
            Node::Class { negated, ranges } => {
                let start = self.ranges.len();
                self.ranges.extend_from_slice(ranges);
                self.insts.push(Inst::Class {
                    start,
                    end: self.ranges.len(),
                    negated: *negated,
                });
            }
            Node::Alternation(branches) => {
                // split -> branch -> jump end, chained: the last branch needs no split.
                let mut jumps = Vec::with_capacity(branches.len());
                for (i, branch) in branches.iter().enumerate() {
                    let last = i + 1 == branches.len();
                    let split = self.insts.len();
                    if !last {
                        self.insts.push(Inst::Split(split + 1, 0));
                    }
                    self.emit_all(branch);
                    if !last {
                        jumps.push(self.insts.len());
                        self.insts.push(Inst::Jump(0));
                        let next = self.insts.len();
                        self.insts[split] = Inst::Split(split + 1, next);
                    }
                }
                let end = self.insts.len();
                for jump in jumps {
                    self.insts[jump] = Inst::Jump(end);
                }
            }
        }
    }

    /// `L: split(L+1, L+3); L+1: step; L+2: jump L`.
    fn repeat(&mut self, step: Inst) {
        let at = self.insts.len();
        self.insts.push(Inst::Split(at + 1, at + 3));
        self.insts.push(step);
        self.insts.push(Inst::Jump(at));
    }

    /// Whether the whole of `text` matches.
    pub(crate) fn is_match(&self, text: &str) -> bool {
        let mut current = Threads::new(self.insts.len());
        let mut next = Threads::new(self.insts.len());
        let mut stack = Vec::new();
        current.add(&self.insts, 0, &mut stack);
        for c in text.chars() {
            if current.list.is_empty() {
                return false;
            }
            next.clear();
            for &pc in &current.list {
                let step = match &self.insts[pc] {
                    Inst::Char(want) => *want == c,
                    Inst::AnyButSeparator => !is_separator(c),
                    Inst::Any => true,
                    Inst::Class {
                        start,
                        end,
                        negated,
                    } => {
                        let member = self.ranges[*start..*end]
                            .iter()
                            .any(|&(low, high)| low <= c && c <= high);
                        if *negated {
                            !member && !is_separator(c)
                        } else {
                            member
                        }
                    }
                    Inst::Split(..) | Inst::Jump(_) | Inst::Match => false,
                };
                if step {
                    next.add(&self.insts, pc + 1, &mut stack);
                }
            }
            core::mem::swap(&mut current, &mut next);
        }
        current
            .list
            .iter()
            .any(|&pc| matches!(self.insts[pc], Inst::Match))
    }
}

/// The set of live instructions: a list in insertion order plus a membership mark per
/// instruction (a generation number, so clearing is O(1)).
struct Threads {
    list: Vec<usize>,
    mark: Vec<u32>,
    generation: u32,
}

impl Threads {
    fn new(len: usize) -> Self {
        Threads {
            list: Vec::with_capacity(len),
            mark: vec![0; len],
            generation: 1,
        }
    }

    fn clear(&mut self) {
        self.list.clear();
        self.generation += 1;
    }

    /// Adds `pc` and everything reachable from it without reading a character.
    fn add(&mut self, insts: &[Inst], pc: usize, stack: &mut Vec<usize>) {
        stack.push(pc);
        while let Some(pc) = stack.pop() {
            if self.mark[pc] == self.generation {
                continue;
            }
            self.mark[pc] = self.generation;
            match insts[pc] {
                Inst::Split(a, b) => {
                    stack.push(b);
                    stack.push(a);
                }
                Inst::Jump(to) => stack.push(to),
                _ => self.list.push(pc),
            }
        }
    }
}
