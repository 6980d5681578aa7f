export { Sandbox, Files, WatchHandle } from "./sandbox.js";
export type { CreateOptions, RunCodeOptions, ExecOptions, StreamEvent, WatchEvent } from "./sandbox.js";
export { Execution, Result } from "./models.js";
export type { ExecutionError, SandboxInfo, EntryInfo, FilesDiff } from "./models.js";
export { Transport, DEFAULT_URL } from "./transport.js";
export type { ConnectionOptions } from "./transport.js";
export * from "./errors.js";
export { TOOLS, MAX_DOWNLOAD_BYTES, openaiTools, anthropicTools, dispatch } from "./tools.js";
export type { ToolDefinition, ToolParameters, JsonSchemaProperty, OpenAITool, AnthropicTool, ToolResult, ToolError } from "./tools.js";
