// The file descriptor an isolated run's child writes its result to. Kept in
// a module of its own so that the child loads nothing else with it.
export const RESULT_FD = 3;
