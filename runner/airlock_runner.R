# airlock_runner.R - the persistent R session behind run_code language="r".
#
# Started by airlock-agent (src/agent/lang.c, src/agent/repl.c) as uid 1000
# with no capabilities and the sandbox's seccomp filter, exactly like the
# Python runner, and speaking the same wire format (docs/protocol.md):
#
#   fd 3 (agent -> runner)  u32le length + JSON {"code": str, "env": {..}|null,
#                           "deadline_mono_ms": int} or {"reap": [pid, ...]}
#   fd 4 (runner -> agent)  u32le length + JSON {"exit_code", "error":
#                           {"name","value","traceback"}, "results": [bundle],
#                           "execution_count", "engine": "r"}
#   fd 1, fd 2              print()/cat() output, message()/warnings
#
# Cells are evaluated in the global environment, so state persists across
# calls. Every top-level expression but the last is auto-printed as at the
# R console; the value of the last one, when visible, is the main result
# (text/plain; data frames and matrices also text/html and application/json).
# Each page drawn on the cell's png device (cairo: no X needed) is an
# image/png result, before the main result, as the Python runner orders
# figures. Timeouts: the agent's SIGINT is R's interrupt condition, caught
# around the cell; the session survives.
#
# jsonlite (r-cran-jsonlite) is the one dependency: no hand-written JSON.
# The runner's own functions live in a local environment, not the global
# one, so ls() in a cell shows only the user's objects.
local({
    suppressPackageStartupMessages(library(jsonlite, quietly = TRUE))
    # Reopen the agent's pipes close-on-exec ("e": glibc fopen's O_CLOEXEC)
    # and close the inherited 3 and 4, so system() children do not get the
    # control channel (the Python runner does the same with F_DUPFD_CLOEXEC).
    # "a", never "w": were fd 4 not the pipe (started by hand), "w" would
    # truncate whatever file it is.
    cin <- file("/proc/self/fd/3", "reb", raw = TRUE)
    cout <- file("/proc/self/fd/4", "aeb", raw = TRUE)
    invisible(parallel:::closeFD(c(3L, 4L)))

    results_budget <- 900000 # the agent's RESULT frame is at most 1 MiB
    text_max <- 200000
    html_max_rows <- 200
    count <- 0L
    plot_dir <- file.path(tempdir(), "airlock-plots")
    dir.create(plot_dir, showWarnings = FALSE)

    read_exact <- function(n) {
        out <- raw(0)
        while (length(out) < n) {
            b <- readBin(cin, "raw", n - length(out))
            if (length(b) == 0) return(NULL)
            out <- c(out, b)
        }
        out
    }

    read_command <- function() {
        h <- read_exact(4)
        if (is.null(h)) quit(save = "no", status = 0) # the agent closed the pipe
        n <- sum(as.numeric(as.integer(h)) * c(1, 256, 65536, 16777216))
        body <- if (n > 0) read_exact(n) else raw(0)
        if (is.null(body)) quit(save = "no", status = 0)
        s <- rawToChar(body)
        Encoding(s) <- "UTF-8"
        fromJSON(s, simplifyVector = FALSE)
    }

    write_reply <- function(x) {
        s <- enc2utf8(as.character(toJSON(x, auto_unbox = TRUE, null = "null", na = "null", digits = NA, force = TRUE)))
        b <- charToRaw(s)
        n <- length(b)
        h <- as.raw(c(n %% 256, (n %/% 256) %% 256, (n %/% 65536) %% 256, (n %/% 16777216) %% 256))
        writeBin(c(h, b), cout)
        flush(cout)
    }

    clip <- function(s, max) if (nchar(s, type = "bytes") > max) paste0(substr(s, 1, max), "\n[truncated]") else s

    show_value <- function(v) if (isS4(v)) methods::show(v) else print(v)

    text_of <- function(v) clip(paste(utils::capture.output(show_value(v)), collapse = "\n"), text_max)

    html_escape <- function(s) {
        s <- gsub("&", "&amp;", s, fixed = TRUE)
        s <- gsub("<", "&lt;", s, fixed = TRUE)
        gsub(">", "&gt;", s, fixed = TRUE)
    }

    # A table like pandas' _repr_html_: header, row names, at most
    # html_max_rows rows (then a row saying how many were left out).
    html_table <- function(v) {
        m <- as.data.frame(v, stringsAsFactors = FALSE)
        n <- nrow(m)
        shown <- utils::head(m, html_max_rows)
        rn <- rownames(shown)
        if (is.null(rn)) rn <- as.character(seq_len(nrow(shown)))
        cols <- lapply(shown, function(col) html_escape(format(col)))
        head <- paste0("<th>", html_escape(names(shown)), "</th>", collapse = "")
        rows <- vapply(seq_len(nrow(shown)), function(i) {
            cells <- paste0("<td>", vapply(cols, function(col) col[[i]], ""), "</td>", collapse = "")
            paste0("<tr><th>", html_escape(rn[[i]]), "</th>", cells, "</tr>")
        }, "")
        more <- if (n > nrow(shown)) sprintf("<tr><td colspan=\"%d\">... %d more rows</td></tr>", ncol(shown) + 1L, n - nrow(shown)) else ""
        sprintf("<table class=\"dataframe\" border=\"1\">\n<thead><tr><th></th>%s</tr></thead>\n<tbody>\n%s%s\n</tbody>\n</table>\n<p>%d rows x %d columns</p>",
                head, paste(rows, collapse = "\n"), more, n, ncol(m))
    }

    json_of <- function(v, max) {
        j <- tryCatch(toJSON(v, auto_unbox = TRUE, dataframe = "rows", digits = NA, na = "null"), error = function(e) NULL)
        if (is.null(j) || nchar(j, type = "bytes") > max) return(NULL)
        fromJSON(j, simplifyVector = FALSE)
    }

    bundle_of <- function(v) {
        b <- list(`text/plain` = text_of(v))
        if (is.data.frame(v) || is.matrix(v)) {
            b[["text/html"]] <- tryCatch(html_table(v), error = function(e) NULL)
            b[["application/json"]] <- json_of(as.data.frame(v), results_budget / 3)
        } else if ((is.list(v) || is.atomic(v)) && !is.object(v) && length(v) > 0) {
            b[["application/json"]] <- json_of(v, results_budget / 4)
        }
        b
    }

    # Frames of the user's code at a condition: from the cell's top-level
    # expression down to the call that signalled, without the runner's own.
    user_calls <- function() {
        calls <- sys.calls()
        funs <- lapply(seq_along(calls), sys.function)
        top <- which(vapply(funs, identical, TRUE, eval_cell_expr))
        if (length(top) == 0) return(list())
        from <- top[[length(top)]] + 3L # eval_cell_expr(), withVisible(), eval(), then the user's
        to <- length(calls) - 1L # without this handler
        if (from > to) return(list())
        keep <- calls[from:to]
        keep[!vapply(keep, function(cl) identical(cl, runner_eval_call) || is.name(cl[[1]]) &&
                         as.character(cl[[1]]) %in% c(".handleSimpleError", "h", ".signalSimpleWarning"), TRUE)]
    }

    format_traceback <- function(cond, calls) {
        call <- conditionCall(cond)
        if (identical(call, runner_eval_call)) call <- NULL # stop() at the cell's top level
        head <- if (!is.null(call)) sprintf("Error in %s: %s", paste(deparse(call, nlines = 1), collapse = ""), conditionMessage(cond))
                else sprintf("Error: %s", conditionMessage(cond))
        if (length(calls) == 0) return(head)
        lines <- vapply(seq_along(calls), function(i) sprintf("%d. %s", i, paste(deparse(calls[[i]], nlines = 1), collapse = "")), "")
        paste(c(head, "Traceback:", lines), collapse = "\n")
    }

    eval_cell_expr <- function(e) withVisible(eval(e, globalenv()))
    runner_eval_call <- quote(eval(e, globalenv()))

    set_env <- function(env) {
        if (is.null(env) || length(env) == 0) return(NULL)
        old <- Sys.getenv(names(env), unset = NA, names = TRUE)
        do.call(Sys.setenv, env)
        old
    }

    restore_env <- function(old) {
        for (k in names(old)) if (is.na(old[[k]])) Sys.unsetenv(k) else do.call(Sys.setenv, stats::setNames(list(old[[k]]), k))
    }

    collect_plots <- function(dev) {
        if (dev %in% grDevices::dev.list()) grDevices::dev.off(dev)
        files <- sort(list.files(plot_dir, pattern = "^p[0-9]+\\.png$", full.names = TRUE))
        out <- list()
        used <- 0
        for (i in seq_along(files)) {
            size <- file.info(files[[i]])$size
            if (!is.na(size) && size > 0 && used + size * 4 / 3 < results_budget) {
                png <- readBin(files[[i]], "raw", size)
                out[[length(out) + 1L]] <- list(`image/png` = base64_enc(png), `text/plain` = sprintf("<plot %d>", i))
                used <- used + size * 4 / 3
            } else {
                out[[length(out) + 1L]] <- list(`text/plain` = sprintf("<plot %d>", i), truncated = TRUE)
            }
        }
        unlink(files)
        out
    }

    run_cell <- function(code, env) {
        count <<- count + 1L
        error <- NULL
        main <- NULL
        calls <- list()
        old_env <- set_env(env)
        on.exit(restore_env(old_env), add = TRUE)
        exprs <- tryCatch(parse(text = code, keep.source = FALSE), error = function(e) e)
        if (inherits(exprs, "error")) {
            msg <- conditionMessage(exprs)
            cat("Error: ", msg, "\n", sep = "", file = stderr())
            return(list(exit_code = 1L, error = list(name = "SyntaxError", value = msg, traceback = msg), results = list()))
        }
        unlink(list.files(plot_dir, full.names = TRUE))
        grDevices::png(file.path(plot_dir, "p%03d.png"), width = 640, height = 480, type = "cairo")
        dev <- grDevices::dev.cur()
        outcome <- tryCatch(withCallingHandlers({
            n <- length(exprs)
            for (i in seq_len(n)) {
                r <- eval_cell_expr(exprs[[i]])
                if (r$visible) {
                    v <- r$value
                    graphic <- inherits(v, c("ggplot", "trellis", "recordedplot"))
                    if (i < n || graphic) show_value(v) else main <- bundle_of(v)
                }
            }
            "ok"
        }, error = function(e) calls <<- user_calls(),
           warning = function(w) {
               # at the console they come after the cell; here, in order
               call <- conditionCall(w)
               where <- if (is.null(call) || identical(call, runner_eval_call)) "" else paste0(" in ", paste(deparse(call, nlines = 1), collapse = ""))
               cat("Warning message", where, ":\n", conditionMessage(w), "\n", sep = "", file = stderr())
               invokeRestart("muffleWarning")
           }),
        error = function(e) e,
        interrupt = function(i) i)
        if (inherits(outcome, "interrupt")) {
            error <- list(name = "KeyboardInterrupt", value = "interrupted", traceback = "")
        } else if (inherits(outcome, "error")) {
            tb <- clip(format_traceback(outcome, calls), 64000)
            cat(tb, "\n", sep = "", file = stderr())
            error <- list(name = class(outcome)[[1]], value = conditionMessage(outcome), traceback = tb)
        }
        results <- collect_plots(dev)
        if (!is.null(main)) {
            main[["is_main_result"]] <- TRUE
            results[[length(results) + 1L]] <- main
        }
        list(exit_code = if (is.null(error)) 0L else 1L, error = error, results = results)
    }

    # Warm-up, before the first command: R byte-compiles a closure at its
    # first calls (these and jsonlite's), and the first png device loads
    # cairo; measured here ~0.2-0.3 s spread over the first two cells
    # otherwise (docs/benchmarks.md). Output of the dummy cells is dropped.
    local({
        quiet <- file(nullfile(), open = "w")
        sink(quiet)
        sink(quiet, type = "message")
        on.exit({
            sink(type = "message")
            sink()
            close(quiet)
        })
        for (code in c("invisible(NULL)", "1", "'a'", "list(a = TRUE)", "data.frame(a = 1:2, b = c('x', 'y'))", "stop('warm')"))
            invisible(toJSON(run_cell(code, NULL), auto_unbox = TRUE, null = "null", na = "null", digits = NA, force = TRUE))
    })
    count <- 0L

    # {"reap": pids}: the agent killed these children of ours after a
    # timeout. R's own children are system()'s and pipe()'s, which R waits
    # for itself (the kill ends that wait), so nothing is left to collect:
    # the message is read and dropped.
    repeat {
        # An interrupt outside a cell (a timeout's SIGINT just as it ended)
        # must not end the session: it is dropped here.
        tryCatch({
            cmd <- read_command()
            if (is.null(cmd$reap)) {
                reply <- tryCatch(run_cell(cmd$code, cmd$env),
                                  interrupt = function(i) list(exit_code = 1L, results = list(),
                                                               error = list(name = "KeyboardInterrupt", value = "interrupted", traceback = "")))
                reply$execution_count <- count
                reply$engine <- "r"
                flush(stdout())
                write_reply(reply)
            }
        }, interrupt = function(i) NULL)
    }
})
