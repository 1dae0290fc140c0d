//! Tests of the template engine through its public entry points ([`render`], [`parse`]).

use super::*;
use crate::error::{ErrorKind, Location};
use crate::render::funcs::standard;

fn funcs() -> Funcs {
    let vars: BTreeMap<String, String> = [
        ("IMAGE", "nginx:1.27"),
        ("APP", "we\"b"),
        ("EMPTY", ""),
        ("CPU", "512"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let mut f = standard(Arc::new(vars));
    f.insert(
        "cat",
        Arc::new(|args: &[Value]| Ok(Value::Str(args.iter().map(ToString::to_string).collect()))),
    );
    f.insert("nothing", Arc::new(|_: &[Value]| Ok(Value::Nil)));
    f.insert(
        "count",
        Arc::new(|args: &[Value]| Ok(Value::Int(args.len() as i64))),
    );
    f
}

fn ok(src: &str) -> String {
    match render(src, &funcs()) {
        Ok(o) => o.text,
        Err(e) => panic!("{src:?} failed: {e:?}"),
    }
}

fn err(src: &str) -> TemplateError {
    match render(src, &funcs()) {
        Ok(o) => panic!("{src:?} rendered {:?}, expected an error", o.text),
        Err(e) => e,
    }
}

/// The source text an error underlines.
fn marked<'s>(src: &'s str, e: &TemplateError) -> &'s str {
    &src[e.offset..e.offset + e.len]
}

fn line_col(src: &str, e: &TemplateError) -> (usize, usize) {
    let l = Location::from_offset("t", src, e.offset, e.len);
    (l.line, l.col)
}

#[test]
fn plain_text_is_copied_with_one_literal_segment() {
    let src = "{\"a\": {\"b\": [1, 2]}}\n";
    let out = render(src, &funcs()).unwrap();
    assert_eq!(out.text, src);
    assert_eq!(out.segments, vec![(0, 0, true)]);
    assert_eq!(render("", &funcs()).unwrap().text, "");
}

#[test]
fn closing_braces_in_text_are_literal() {
    assert_eq!(
        ok("{\"x\":{\"y\":\"{{ must_env `IMAGE` }}\"}}"),
        "{\"x\":{\"y\":\"nginx:1.27\"}}"
    );
}

#[test]
fn env_and_must_env() {
    assert_eq!(ok("{{ must_env `IMAGE` }}"), "nginx:1.27");
    assert_eq!(ok("{{ env `CPU` `256` }}"), "512");
    assert_eq!(ok("{{ env `NOPE` `256` }}"), "256");
    assert_eq!(ok("{{ env \"EMPTY\" \"d\" }}"), "d");
    assert_eq!(ok("[{{must_env \"EMPTY\"}}]"), "[]");
}

#[test]
fn pipeline_into_json_escape() {
    assert_eq!(ok("{{ env \"APP\" \"web\" | json_escape }}"), "we\\\"b");
}

#[test]
fn piped_value_is_the_last_argument() {
    assert_eq!(ok("{{ \"c\" | cat \"a\" \"b\" }}"), "abc");
    assert_eq!(ok("{{ cat 1 | cat 2 | cat 3 }}"), "321");
    assert_eq!(ok("{{ count | count 7 7 }}"), "3");
}

#[test]
fn parenthesised_arguments() {
    assert_eq!(
        ok("{{ cat (env `NOPE` `d`) \"!\" (cat (count 1 2)) }}"),
        "d!2"
    );
    assert_eq!(ok("{{ (env `CPU`) }}"), "512");
}

#[test]
fn functions_without_arguments_can_be_arguments() {
    assert_eq!(ok("{{ cat count }}"), "0");
}

#[test]
fn trim_markers_remove_adjacent_whitespace_and_newlines() {
    assert_eq!(ok("a  \n\t{{- `b` -}} \n\n c"), "abc");
    assert_eq!(ok("a \n{{- `b` }} c"), "ab c");
    assert_eq!(ok("a {{ `b` -}}\n  c"), "a bc");
    // No space after the dash: a negative number, no trimming.
    assert_eq!(ok("a {{-3}} b"), "a -3 b");
    assert_eq!(ok("a {{ 3 }} b"), "a 3 b");
}

#[test]
fn comments_with_and_without_trim() {
    assert_eq!(ok("a{{/* note */}}b"), "ab");
    assert_eq!(ok("a \n {{- /* multi\nline */ -}} \n b"), "ab");
    assert_eq!(ok("a {{ /* spaced */ }} b"), "a  b");
}

#[test]
fn comment_errors() {
    let src = "x {{/* never closed }}";
    let e = err(src);
    assert!(e.message.contains("unclosed comment"), "{e:?}");
    assert_eq!(e.offset, 2);
    let src = "{{/* c */ `x` }}";
    let e = err(src);
    assert!(
        e.message
            .contains("comment ends before the closing delimiter"),
        "{e:?}"
    );
    assert_eq!(marked(src, &e), "*/");
}

#[test]
fn string_escapes_and_raw_strings() {
    assert_eq!(
        ok(r#"{{ "a\tb\n\u00e9\x41\101\\\"" }}"#),
        "a\tb\né AA\\\"".replace(' ', "")
    );
    assert_eq!(ok("{{ `raw\\n\n\"x\"` }}"), "raw\\n\n\"x\"");
    assert_eq!(ok("{{ \"\\U0001F600\" }}"), "\u{1F600}");
}

#[test]
fn invalid_escape_points_at_the_escape() {
    let src = "{{ \"ab\\qc\" }}";
    let e = err(src);
    assert!(e.message.contains("invalid escape sequence \\q"), "{e:?}");
    assert_eq!(marked(src, &e), "\\q");
    let e = err("{{ \"\\xZZ\" }}");
    assert!(e.message.contains("invalid escape"), "{e:?}");
    let e = err("{{ \"\\xff\" }}");
    assert!(e.message.contains("not valid UTF-8"), "{e:?}");
}

#[test]
fn numbers_and_constants() {
    assert_eq!(
        ok("{{ 42 }} {{ -7 }} {{ +3 }} {{ 0x1F }} {{ 0o17 }} {{ 017 }} {{ 0b101 }} {{ 1_000 }}"),
        "42 -7 3 31 15 15 5 1000"
    );
    assert_eq!(
        ok("{{ 1.5 }} {{ .5 }} {{ 1e3 }} {{ 2.0 }} {{ -0.25 }}"),
        "1.5 0.5 1000 2 -0.25"
    );
    assert_eq!(
        ok("{{ true }} {{ false }} {{ 'a' }} {{ '\\n' }}"),
        "true false 97 10"
    );
}

#[test]
fn bad_numbers_are_errors() {
    let src = "{{ cat 12abc }}";
    let e = err(src);
    assert!(e.message.contains("bad number syntax"), "{e:?}");
    assert_eq!(marked(src, &e), "12abc");
    let e = err("{{ 99999999999999999999 }}");
    assert!(e.message.contains("out of range"), "{e:?}");
    let e = err("{{ 08 }}");
    assert!(e.message.contains("bad number"), "{e:?}");
    let e = err("{{ 'ab' }}");
    assert!(e.message.contains("exactly one character"), "{e:?}");
}

#[test]
fn floats_print_like_go() {
    let cases = [
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1e21, "1e+21"),
        (-2.5, "-2.5"),
        (0.0, "0"),
        (f64::INFINITY, "+Inf"),
    ];
    for (f, want) in cases {
        assert_eq!(Value::Float(f).to_string(), want, "{f}");
    }
}

#[test]
fn variables_declare_assign_and_scope() {
    assert_eq!(ok("{{ $x := env `CPU` }}[{{ $x }}]"), "[512]");
    assert_eq!(
        ok("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"),
        "2"
    );
    assert_eq!(
        ok("{{ if $v := env `NOPE` `` }}{{ $v }}{{ else }}none{{ end }}"),
        "none"
    );
    // Shadowing inside a block ends with the block.
    assert_eq!(
        ok("{{ $x := 1 }}{{ if true }}{{ $x := 5 }}{{ $x }}{{ end }}{{ $x }}"),
        "51"
    );
}

#[test]
fn undefined_variables_are_parse_errors() {
    let src = "{{ $x := 1 }}\n{{ $y }}";
    let e = err(src);
    assert_eq!(e.message, "undefined variable \"$y\"");
    assert_eq!(marked(src, &e), "$y");
    assert_eq!(line_col(src, &e), (2, 4));
    let src = "{{ if true }}{{ $z := 1 }}{{ end }}{{ $z }}";
    let e = err(src);
    assert!(e.message.contains("\"$z\""), "{e:?}");
    assert_eq!(e.offset, src.rfind("$z").unwrap());
    let e = err("{{ $w = 3 }}");
    assert!(e.message.contains("undefined variable"), "{e:?}");
    assert!(e.hint.unwrap().contains("$w :="));
}

#[test]
fn if_else_if_else() {
    let t = |v: &str| {
        ok(&format!(
            "{{{{ if {v} }}}}a{{{{ else if eq 1 1 }}}}b{{{{ else }}}}c{{{{ end }}}}"
        ))
    };
    for truthy in ["true", "1", "1.5", "`x`", "(env `CPU`)"] {
        assert_eq!(t(truthy), "a", "{truthy}");
    }
    for falsy in ["false", "0", "0.0", "``", "(nothing)", "(env `EMPTY` ``)"] {
        assert_eq!(t(falsy), "b", "{falsy}");
    }
    assert_eq!(
        ok("{{ if false }}a{{ else if false }}b{{ else }}c{{ end }}"),
        "c"
    );
    assert_eq!(ok("{{ if false }}a{{ end }}z"), "z");
}

#[test]
fn with_binds_dot() {
    assert_eq!(
        ok("{{ with env `CPU` `` }}cpu={{ . }}{{ else }}none{{ end }}"),
        "cpu=512"
    );
    assert_eq!(
        ok("{{ with env `NOPE` `` }}{{ . }}{{ else }}none{{ end }}"),
        "none"
    );
    assert_eq!(
        ok("{{ with `` }}a{{ else with must_env `IMAGE` }}{{ . | json_escape }}{{ end }}"),
        "nginx:1.27"
    );
    assert_eq!(
        ok("{{ with 1 }}{{ with 2 }}{{ . }}{{ end }}{{ . }}{{ end }}"),
        "21"
    );
}

#[test]
fn data_access_is_rejected_with_a_hint() {
    let src = "\"image\": \"{{ .Image }}\"";
    let e = err(src);
    assert!(
        e.message.contains("field access .Image is not supported"),
        "{e:?}"
    );
    assert_eq!(marked(src, &e), ".Image");
    assert!(e.hint.unwrap().contains("must_env"));
    let e = err("{{ . }}");
    assert!(
        e.message
            .contains("`.` (the template data) is not available"),
        "{e:?}"
    );
    let e = err("{{ with 1 }}{{ else }}{{ . }}{{ end }}");
    assert!(e.message.contains("not available"), "{e:?}");
    let e = err("{{ $ }}");
    assert!(e.message.contains("$ (the template data)"), "{e:?}");
    let src = "{{ $x := 1 }}{{ $x.Name }}";
    let e = err(src);
    assert_eq!(marked(src, &e), ".Name");
}

#[test]
fn unsupported_keywords() {
    for (src, want) in [
        ("{{ range $i := 1 }}{{ end }}", "\"range\" is not supported"),
        ("{{ define \"x\" }}{{ end }}", "\"define\": named templates"),
        ("{{ template \"x\" }}", "\"template\": named templates"),
        ("{{ block \"x\" 1 }}{{ end }}", "\"block\": named templates"),
        ("{{ break }}", "break and continue are not supported"),
        ("{{ continue }}", "break and continue"),
    ] {
        let e = err(src);
        assert!(e.message.contains(want), "{src}: {e:?}");
        assert_eq!(e.offset, 3, "{src}");
        assert!(e.hint.is_some());
    }
}

#[test]
fn and_or_short_circuit_and_return_values() {
    assert_eq!(ok("{{ or (env `NOPE` ``) `fallback` }}"), "fallback");
    assert_eq!(ok("{{ and 1 `x` }}"), "x");
    assert_eq!(ok("{{ and 0 (must_env `UNSET`) }}"), "0");
    assert_eq!(ok("{{ or `y` (must_env `UNSET`) }}"), "y");
    assert_eq!(ok("{{ `p` | and 1 }}"), "p");
    assert!(err("{{ and }}").message.contains("at least 1 argument"));
}

#[test]
fn not_and_len() {
    assert_eq!(
        ok("{{ not `` }} {{ not 1 }} {{ len `héllo` }}"),
        "true false 6"
    );
    let src = "{{ len 5 }}";
    let e = err(src);
    assert!(e.message.contains("len of int"), "{e:?}");
    assert_eq!(marked(src, &e), "5");
    assert!(
        err("{{ not 1 2 }}")
            .message
            .contains("wrong number of arguments for not")
    );
}

#[test]
fn comparisons() {
    assert_eq!(
        ok("{{ eq 1 1 }} {{ eq `a` `b` `a` }} {{ ne 1 2 }} {{ eq 1 1.0 }}"),
        "true true true true"
    );
    assert_eq!(
        ok("{{ lt 1 2 }} {{ le 2 2 }} {{ gt 1.5 1 }} {{ ge `a` `b` }}"),
        "true true true false"
    );
    assert_eq!(ok("{{ eq nil nil }} {{ eq (nothing) 1 }}"), "true false");
    assert_eq!(ok("{{ if eq (env `CPU`) `512` }}big{{ end }}"), "big");
    let src = "{{ eq 1 `1` }}";
    let e = err(src);
    assert!(
        e.message
            .contains("incompatible types for comparison: int and string"),
        "{e:?}"
    );
    assert_eq!(marked(src, &e), "`1`");
    assert!(
        err("{{ lt true false }}")
            .message
            .contains("invalid type for comparison: bool")
    );
    assert!(err("{{ eq 1 }}").message.contains("at least 2"));
}

#[test]
fn print_and_println_spacing() {
    assert_eq!(ok("{{ print 1 2 `a` 3 `b` `c` }}"), "1 2a3bc");
    assert_eq!(ok("{{ println `a` 1 }}"), "a 1\n");
    assert_eq!(ok("{{ print nil 1.5 true }}"), "<nil> 1.5 true");
}

#[test]
fn printf_verbs() {
    assert_eq!(ok("{{ printf `%s-%d-%v-%%` `a` 42 true }}"), "a-42-true-%");
    assert_eq!(ok("{{ printf `%q` `a\"b` }}"), "\"a\\\"b\"");
    assert_eq!(
        ok("{{ printf `%f|%.2f|%8.3f|%e|%g` 1.5 3.14159 2.5 1234.5 0.000012 }}"),
        "1.500000|3.14|   2.500|1.234500e+03|1.2e-05"
    );
    assert_eq!(
        ok(
            "{{ printf `%05d|%-4s|%4s|%+d|%x|%X|%#x|%o|%b|%c|%.3d` 42 `ab` `ab` 5 255 255 255 8 5 65 7 }}"
        ),
        "00042|ab  |  ab|+5|ff|FF|0xff|10|101|A|007"
    );
    assert_eq!(
        ok("{{ printf `%v %v %.3g %t` 1e6 nil 3.14159 false }}"),
        "1e+06 <nil> 3.14 false"
    );
    assert_eq!(ok("{{ `x` | printf `[%s]` }}"), "[x]");
    assert_eq!(ok("{{ printf `%.2s|%x` `hello` `hi` }}"), "he|6869");
}

#[test]
fn printf_errors_point_at_the_argument() {
    let src = "{{ printf `%d` `abc` }}";
    let e = err(src);
    assert!(
        e.message
            .contains("%d needs an integer, got string \"abc\""),
        "{e:?}"
    );
    assert_eq!(marked(src, &e), "`abc`");
    let src = "{{ printf `%s %s` `a` }}";
    let e = err(src);
    assert!(e.message.contains("missing argument for %s"), "{e:?}");
    assert_eq!(marked(src, &e), "`%s %s`");
    let src = "{{ printf `%s` `a` 2 }}";
    let e = err(src);
    assert!(e.message.contains("too many arguments"), "{e:?}");
    assert_eq!(marked(src, &e), "2");
    let e = err("{{ printf `%z` 1 }}");
    assert!(e.message.contains("unknown verb %z"), "{e:?}");
    assert!(err("{{ printf 1 }}").message.contains("format string"));
    assert!(err("{{ printf `%` }}").message.contains("lone %"));
    assert!(
        err("{{ printf `%99999d` 1 }}")
            .message
            .contains("larger than")
    );
}

#[test]
fn unknown_function_suggests_a_name() {
    let src = "{\n  \"image\": \"{{ must_emv `IMAGE` }}\"\n}";
    let e = err(src);
    assert_eq!(e.message, "function \"must_emv\" not defined");
    assert_eq!(marked(src, &e), "must_emv");
    assert_eq!(line_col(src, &e), (2, 16));
    assert_eq!(e.hint.as_deref(), Some("did you mean \"must_env\"?"));
    let e = err("{{ zzzzzzzz 1 }}");
    let hint = e.hint.unwrap();
    assert!(
        hint.contains("available functions: cat, count, env"),
        "{hint}"
    );
    assert!(hint.contains("printf"), "{hint}");
}

#[test]
fn unknown_function_is_found_in_untaken_branches_too() {
    let e = err("{{ if false }}{{ tfstate `x` }}{{ end }}");
    assert!(e.message.contains("\"tfstate\" not defined"), "{e:?}");
}

#[test]
fn function_error_carries_hint_and_location() {
    let src = "{\n  \"image\": \"{{ must_env `IMAGE_TAG` }}\"\n}";
    let e = err(src);
    assert_eq!(
        e.message,
        "must_env: environment variable IMAGE_TAG is not set"
    );
    assert_eq!(marked(src, &e), "must_env `IMAGE_TAG`");
    assert_eq!(line_col(src, &e), (2, 16));
    assert!(
        e.hint
            .unwrap()
            .contains("set IMAGE_TAG in the environment or in an --envfile")
    );
    // An error message that already names the function is not prefixed twice.
    let e = err("{{ env 1 }}");
    assert_eq!(e.message, "env takes strings, got a number");
    let mut f = funcs();
    f.insert(
        "e",
        Arc::new(|_: &[Value]| Err(FuncError::input("error text"))),
    );
    let e = render("{{ e }}", &f).unwrap_err();
    assert_eq!(e.message, "e: error text");
    assert_eq!(e.hint, None);
    assert_eq!(e.kind, ErrorKind::BadInput);
}

#[test]
fn function_error_keeps_its_kind_and_points_at_the_call() {
    let mut f = funcs();
    f.insert(
        "lookup",
        Arc::new(|_: &[Value]| {
            Err(FuncError::aws("AccessDenied on GetParameter").hint("grant ssm:GetParameter"))
        }),
    );
    let src = "{\n  \"a\": \"{{ \"x\" | lookup }}\"\n}";
    let e = render(src, &f).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Aws);
    assert_eq!(e.message, "lookup: AccessDenied on GetParameter");
    assert_eq!(e.hint.as_deref(), Some("grant ssm:GetParameter"));
    assert_eq!(marked(src, &e), "lookup");
    assert_eq!(line_col(src, &e), (2, 18));
    // Syntax errors and builtin errors stay input errors.
    assert_eq!(err("{{ printf }}").kind, ErrorKind::BadInput);
    assert_eq!(err("{{ nope }}").kind, ErrorKind::BadInput);
}

#[test]
fn func_error_from_error_keeps_kind_message_and_hint() {
    let aws = crate::error::Error::new(
        ErrorKind::Aws,
        crate::error::Diagnostic::error("GetParameter failed: AccessDeniedException")
            .hint("check the IAM policy"),
    );
    let fe = FuncError::from_error(&aws);
    assert_eq!(fe.kind, ErrorKind::Aws);
    assert_eq!(fe.message, "GetParameter failed: AccessDeniedException");
    assert_eq!(fe.hint.as_deref(), Some("check the IAM policy"));
    let fe = FuncError::from_error(&crate::error::Error::bad_input("bad"));
    assert_eq!((fe.kind, fe.hint), (ErrorKind::BadInput, None));
}

#[test]
fn unclosed_action_at_end_of_input() {
    let src = "{\n  \"image\": \"{{ must_env \"X\"";
    let e = err(src);
    assert!(e.message.starts_with("unclosed action"), "{e:?}");
    assert_eq!(e.offset, src.find("{{").unwrap());
    assert_eq!(line_col(src, &e), (2, 13));
}

#[test]
fn unclosed_action_before_the_next_action() {
    let src = "{\n  \"image\": \"{{ must_env `IMAGE`\",\n  \"cpu\": \"{{ env `CPU` }}\"\n}";
    let e = err(src);
    assert!(e.message.starts_with("unclosed action"), "{e:?}");
    assert_eq!(line_col(src, &e), (2, 13));
    assert_eq!(marked(src, &e), "{{ must_env `IMAGE`\",");
    let src = "{{ if true\n}}x{{ end }}{{ 1";
    let e = err(src);
    assert!(e.message.starts_with("unclosed action"), "{e:?}");
    assert_eq!(e.offset, src.rfind("{{").unwrap());
}

#[test]
fn unterminated_strings() {
    let src = "{{ must_env \"IMAGE }}\n";
    let e = err(src);
    assert_eq!(e.message, "unterminated quoted string");
    assert_eq!(e.offset, src.find('"').unwrap());
    let src = "{{ must_env `IMAGE }}";
    let e = err(src);
    assert_eq!(e.message, "unterminated raw string");
    assert_eq!(e.offset, src.find('`').unwrap());
}

#[test]
fn missing_values_and_stray_parentheses() {
    let e = err("a {{ }} b");
    assert_eq!(e.message, "missing value in action");
    assert_eq!(e.offset, 5);
    let e = err("{{ if }}x{{ end }}");
    assert_eq!(e.message, "missing value for if");
    let src = "{{ cat (env `A` }}";
    let e = err(src);
    assert!(e.message.contains("unclosed parenthesis"), "{e:?}");
    assert_eq!(e.offset, src.find('(').unwrap());
    let src = "{{ cat 1) }}";
    let e = err(src);
    assert!(e.message.contains("unexpected )"), "{e:?}");
    assert_eq!(marked(src, &e), ")");
    let e = err("{{ cat 1 | }}");
    assert!(e.message.contains("missing command"), "{e:?}");
}

#[test]
fn end_and_else_without_if() {
    let src = "a\n{{ end }}";
    let e = err(src);
    assert!(e.message.contains("unexpected {{end}}"), "{e:?}");
    assert_eq!(marked(src, &e), "{{ end }}");
    let e = err("{{ else }}");
    assert!(e.message.contains("unexpected {{else}}"), "{e:?}");
    let e = err("{{ if 1 }}{{ end 5 }}");
    assert!(e.message.contains("after end"), "{e:?}");
}

#[test]
fn missing_end_points_at_the_block() {
    let src = "{\n  {{ if eq (env `A` ``) `x` }}\n  \"a\": 1\n}\n";
    let e = err(src);
    assert_eq!(e.message, "missing {{end}} for this {{if}}");
    assert_eq!(line_col(src, &e), (2, 3));
    assert_eq!(marked(src, &e), "{{ if eq (env `A` ``) `x` }}");
    let e = err("{{ with 1 }}{{ else }}");
    assert_eq!(e.message, "missing {{end}} for this {{with}}");
}

#[test]
fn second_else_is_an_error() {
    let src = "{{ if 1 }}a{{ else }}b{{ else }}c{{ end }}";
    let e = err(src);
    assert!(e.message.contains("{{else}} after {{else}}"), "{e:?}");
    assert_eq!(e.offset, src.rfind("{{ else").unwrap());
}

#[test]
fn nil_output_is_an_error_but_nil_arguments_are_fine() {
    let src = "x {{ nothing }}";
    let e = err(src);
    assert_eq!(e.message, "template action produced no value");
    assert_eq!(marked(src, &e), "{{ nothing }}");
    assert_eq!(ok("{{ cat nil }}{{ count nil (nothing) }}"), "<nil>2");
    let e = err("{{ nil }}");
    assert_eq!(e.message, "nil is not a command");
}

#[test]
fn only_functions_take_arguments() {
    let src = "{{ `a` `b` }}";
    let e = err(src);
    assert!(
        e.message
            .contains("is not a function and cannot take arguments"),
        "{e:?}"
    );
    let src = "{{ `a` | 3 }}";
    let e = err(src);
    assert!(e.message.contains("cannot pipe into \"3\""), "{e:?}");
    assert_eq!(marked(src, &e), "3");
}

#[test]
fn syntax_errors_inside_actions() {
    let src = "{{ cat `a``b` }}";
    let e = err(src);
    assert!(e.message.contains("missing space"), "{e:?}");
    assert_eq!(marked(src, &e), "`b`");
    let e = err("{{ cat 1, 2 }}");
    assert!(e.message.contains("\",\""), "{e:?}");
    let e = err("{{ x := 1 }}");
    assert!(e.message.contains("not defined"), "{e:?}");
    let e = err("{{ cat := 1 }}");
    assert!(e.message.contains("only a $variable"), "{e:?}");
    let src = "{{ env `A`-}}";
    let e = err(src);
    assert!(
        e.hint
            .as_deref()
            .unwrap_or("")
            .contains("trim marker needs a space"),
        "{e:?}"
    );
    let e = err("{{ cat if }}");
    assert!(e.message.contains("\"if\" inside a command"), "{e:?}");
    let e = err("{{ cat ( $x := 1 ) }}");
    assert!(
        e.message.contains("not allowed inside parentheses"),
        "{e:?}"
    );
    let e = err("{{ cat # }}");
    assert!(e.message.contains("unexpected character '#'"), "{e:?}");
}

#[test]
fn deep_nesting_is_refused_without_overflow() {
    let deep_parens = format!(
        "{{{{ cat {}1{} }}}}",
        "(cat ".repeat(5000),
        ")".repeat(5000)
    );
    let e = err(&deep_parens);
    assert!(e.message.contains("nests too deeply"), "{e:?}");
    let deep_ifs = format!("{}x{}", "{{ if 1 }}".repeat(5000), "{{ end }}".repeat(5000));
    let e = err(&deep_ifs);
    assert!(e.message.contains("nests too deeply"), "{e:?}");
    let fine = format!("{}x{}", "{{ if 1 }}".repeat(50), "{{ end }}".repeat(50));
    assert_eq!(ok(&fine), "x");
    // Long else-if chains are flat, not nested.
    let chain = format!(
        "{{{{ if 0 }}}}{}y{{{{ end }}}}",
        "{{ else if 0 }}".repeat(3000)
    );
    assert_eq!(ok(&chain), "");
}

#[test]
fn segments_map_output_back_to_the_source() {
    let src = "{\"image\": \"{{ must_env `IMAGE` }}\", \"cpu\": {{ env `CPU` }}, \"x\": 1}";
    let out = render(src, &funcs()).unwrap();
    assert_eq!(
        out.text,
        "{\"image\": \"nginx:1.27\", \"cpu\": 512, \"x\": 1}"
    );
    // A byte after an action of a different length maps to the same text in the source.
    let o = out.text.find("\"x\"").unwrap();
    let s = out.source_offset(o);
    assert_eq!(&src[s..s + 3], "\"x\"");
    let o = out.text.find("\"cpu\"").unwrap();
    assert_eq!(&src[out.source_offset(o)..][..5], "\"cpu\"");
    // Every byte of an action's output maps to the action.
    let a = src.find("{{ must_env").unwrap();
    let o = out.text.find("nginx").unwrap();
    for i in o..o + "nginx:1.27".len() {
        assert_eq!(out.source_offset(i), a);
    }
    // Literal bytes map byte for byte.
    for i in 0..o {
        assert_eq!(out.text.as_bytes()[i], src.as_bytes()[out.source_offset(i)]);
    }
}

#[test]
fn segments_survive_trims_and_branches() {
    let src = "{{ if false }}skipped{{ else }}\n  {{- `é` -}}  \n  tail{{ end }}";
    let out = render(src, &funcs()).unwrap();
    assert_eq!(out.text, "étail");
    let s = out.source_offset(out.text.find("tail").unwrap());
    assert_eq!(&src[s..s + 4], "tail");
    assert_eq!(out.source_offset(0), src.find("{{- `é`").unwrap());
    let sorted = out.segments.windows(2).all(|w| w[0].0 < w[1].0);
    assert!(sorted, "{:?}", out.segments);
}

#[test]
fn error_offsets_are_bytes_after_multibyte_text() {
    let src = "héllo wörld {{ must_emv `X` }}";
    let e = err(src);
    assert_eq!(marked(src, &e), "must_emv");
    assert_eq!(line_col(src, &e), (1, 16));
}

#[test]
fn parsed_template_is_reusable_and_prefixes_work() {
    let mut plugin = Funcs::new();
    plugin.insert(
        "tfstate",
        Arc::new(|a: &[Value]| Ok(Value::Str(format!("arn:{}", a[0])))),
    );
    let mut f = funcs();
    f.extend(plugin.with_prefix("tf_"));
    assert!(f.contains("tf_tfstate") && !f.contains("tfstate"));
    let t = parse("{{ tf_tfstate `aws_iam_role.task.arn` }}", &f).unwrap();
    assert_eq!(t.execute(&f).unwrap().text, "arn:aws_iam_role.task.arn");
    assert_eq!(t.execute(&f).unwrap().text, "arn:aws_iam_role.task.arn");
    assert!(t.execute(&funcs()).is_err());
    assert!(t.source().contains("tf_tfstate"));
}

#[test]
fn user_functions_take_precedence_over_builtins() {
    let mut f = funcs();
    f.insert("len", Arc::new(|_: &[Value]| Ok(Value::Str("mine".into()))));
    assert_eq!(render("{{ len `abc` }}", &f).unwrap().text, "mine");
}

/// A tiny deterministic PRNG (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn random_inputs_never_panic() {
    const PIECES: [&str; 40] = [
        "{{",
        "}}",
        "{{- ",
        " -}}",
        "/*",
        "*/",
        " ",
        "\n",
        "\"",
        "`",
        "'",
        "\\",
        "$x",
        ":=",
        "=",
        "|",
        "(",
        ")",
        "if ",
        "else ",
        "end",
        "with ",
        "range",
        ".",
        ".F",
        "env ",
        "must_env ",
        "printf ",
        "`%d`",
        "1",
        "-",
        "0x",
        "1e",
        "é",
        "nil",
        "eq ",
        "and ",
        "{",
        "}",
        ",",
    ];
    let f = funcs();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut rendered = 0;
    for _ in 0..4000 {
        let n = (rng.next() % 24) as usize;
        let mut src = String::new();
        for _ in 0..n {
            let r = rng.next();
            if r.is_multiple_of(4) {
                src.push(char::from(b' ' + (r >> 8) as u8 % 95));
            } else {
                src.push_str(PIECES[(r >> 8) as usize % PIECES.len()]);
            }
        }
        match render(&src, &f) {
            Ok(out) => {
                rendered += 1;
                for i in 0..out.text.len() {
                    assert!(out.source_offset(i) < src.len().max(1), "{src:?}");
                }
            }
            Err(e) => {
                assert!(
                    e.offset + e.len <= src.len().max(1) || e.len == 1,
                    "{src:?} {e:?}"
                );
                assert!(e.offset <= src.len(), "{src:?} {e:?}");
                assert!(!e.message.is_empty());
            }
        }
    }
    assert!(rendered > 100, "only {rendered} inputs rendered");
}

#[test]
#[ignore = "timing: run with --release -- --ignored"]
fn render_speed() {
    let mut src = String::from("{\n");
    for i in 0..200 {
        src.push_str(&format!(
            "  \"k{i}\": \"{{{{ env `CPU` `256` | json_escape }}}}\", \"pad{i}\": \"{}\",\n",
            "x".repeat(60)
        ));
    }
    src.push_str("  \"end\": 1\n}\n");
    assert!(src.len() > 20_000);
    let f = funcs();
    let n = 200;
    let t0 = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(render(&src, &f).unwrap());
    }
    let per = t0.elapsed() / n;
    eprintln!("{} bytes, 200 actions: {per:?} per render", src.len());
    assert!(per < std::time::Duration::from_millis(1));
}

/// Every failing function call of a file is reported, not only the first: printing actions
/// whose function failed with bad input are noted and the run goes on. What the rest depends
/// on (a variable, a condition) still stops it, and an AWS error keeps its kind.
#[test]
fn every_failing_printing_action_is_reported() {
    let src =
        "a {{ must_env `NOPE1` }} b {{ must_env `IMAGE` }} c {{ must_env `NOPE2` | printf `%s` }}";
    let e = err(src);
    let all: Vec<&str> = e.all().map(|e| marked(src, e)).collect();
    assert_eq!(all, ["must_env `NOPE1`", "must_env `NOPE2`"]);
    assert!(e.also[0].message.contains("NOPE2"));
    // A declaration and a condition stop at their first error.
    let src = "{{ $x := must_env `NOPE1` }}{{ must_env `NOPE2` }}";
    assert_eq!(err(src).all().count(), 1);
    let src = "{{ if must_env `NOPE1` }}x{{ end }}{{ must_env `NOPE2` }}";
    assert_eq!(err(src).all().count(), 1);
    // Errors in the body of a condition that held are collected too.
    let src = "{{ if true }}{{ must_env `NOPE1` }}{{ end }}{{ must_env `NOPE2` }}";
    assert_eq!(err(src).all().count(), 2);
    // Builtin errors (the template itself is wrong) stop at once.
    let src = "{{ len 3 }}{{ must_env `NOPE2` }}";
    assert_eq!(err(src).all().count(), 1);
    // An AWS error behind a function stops the run and keeps its kind.
    let mut f = funcs();
    f.insert(
        "denied",
        Arc::new(|_: &[Value]| Err(FuncError::aws("AccessDenied"))),
    );
    let e = render(
        "{{ must_env `NOPE1` }}{{ denied }}{{ must_env `NOPE2` }}",
        &f,
    )
    .unwrap_err();
    let kinds: Vec<ErrorKind> = e.all().map(|e| e.kind).collect();
    assert_eq!(kinds, [ErrorKind::BadInput, ErrorKind::Aws]);
}
