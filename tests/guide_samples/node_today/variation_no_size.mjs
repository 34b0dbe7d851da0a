// The SDK's own example of a variation: only the image, so the size is the API's default (1024x1024).
// The client reads OPENAI_API_KEY and OPENAI_BASE_URL.
import fs from "fs";
import OpenAI from "openai";

const client = new OpenAI();

const imagesResponse = await client.images.createVariation({
  image: fs.createReadStream(process.env.IMAGE || "otter.png"),
});
console.log(JSON.stringify({ image_url: imagesResponse.data[0].url, urls: imagesResponse.data.map((image) => image.url), request_id: imagesResponse._request_id }));
