/**
 * Sampling parameters sent when a task's agent_config leaves them out: those of AIOpsLab's
 * OpenRouter stock client (INTERFACE.md §8), so results compare with upstream runs. What was
 * actually sent is recorded on every assistant message and in the conversation's llm_config.
 */
export const SAMPLING_DEFAULTS = Object.freeze({ temperature: 0.5, top_p: 0.95, max_tokens: 1024 });
