//! Syntax: the pest grammar (`grammar/opt.pest`) and an owned AST with byte spans.
