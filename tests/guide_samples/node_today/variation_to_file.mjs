// In-memory image data with today's Node SDK: a Buffer made an upload by the SDK's `toFile`.
// The client reads OPENAI_API_KEY and OPENAI_BASE_URL.
import fs from "fs";
import OpenAI, { toFile } from "openai";

const openai = new OpenAI();

// This is the Buffer object that contains your image data
const buffer = fs.readFileSync(process.env.IMAGE || "image.png");
const response = await openai.images.createVariation({
  model: "dall-e-2",
  image: await toFile(buffer, "image.png", { type: "image/png" }),
  n: 1,
  size: "1024x1024",
});
console.log(JSON.stringify({ image_url: response.data[0].url, urls: response.data.map((image) => image.url), request_id: response._request_id }));
