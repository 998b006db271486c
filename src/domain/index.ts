// The ground floor every layer shares: the words of the domain, no I/O, and no import of ours.
export * from "./slots";
export * from "./plan";
export * from "./outcomes";
export * from "./pauses";
export * from "./reporter";
