/** The HTTP status of a GET, or 0 when nothing answers (a process not up yet, or gone). */
export async function httpStatus(url: string): Promise<number> {
  try {
    return (await fetch(url)).status;
  } catch {
    return 0;
  }
}
